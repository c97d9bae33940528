package org.infusionbridge.sandbox.auth;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.AuthenticationException;
import ca.uhn.fhir.rest.server.exceptions.ForbiddenOperationException;
import ca.uhn.fhir.rest.server.exceptions.InvalidRequestException;
import ca.uhn.fhir.rest.server.servlet.ServletSubRequestDetails;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.jwk.source.JWKSourceBuilder;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.ConfigurableJWTProcessor;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import java.io.IOException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.hl7.fhir.r4.model.Bundle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Demands a bearer JWT from the configured issuer (signature against its JWKS, {@code iss},
 * {@code aud}, {@code exp}) on every request but {@code /metadata}, and a SMART system scope for
 * each interaction: read/vread/history {@code r}, search {@code s}, create {@code c},
 * update/patch {@code u}, delete {@code d}; a batch/transaction needs the scope of every entry;
 * an operation such as {@code $validate} needs {@code r} on its type.
 */
@Interceptor
public class BearerTokenInterceptor {

	private static final Logger ourLog = LoggerFactory.getLogger(BearerTokenInterceptor.class);

	private final AuthSettings settings;
	private final FhirContext context;
	private volatile ConfigurableJWTProcessor<SecurityContext> processor;

	public BearerTokenInterceptor(AuthSettings settings, FhirContext context) {
		this.settings = settings;
		this.context = context;
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_PRE_HANDLED)
	public void check(RequestDetails request, RestOperationTypeEnum operation) {
		if (operation == RestOperationTypeEnum.METADATA || request instanceof ServletSubRequestDetails) {
			return; // metadata is public; entries of a Bundle were checked with the Bundle
		}
		Set<String> scopes = verify(request.getHeader("Authorization"));
		for (Need need : needs(request, operation)) {
			if (!SystemScopes.grants(scopes, need.type(), need.perm())) {
				throw new ForbiddenOperationException(
						"insufficient_scope: system/" + need.type() + "." + need.perm() + " is required");
			}
		}
	}

	private Set<String> verify(String header) {
		if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
			throw unauthenticated("a bearer token is required");
		}
		JWTClaimsSet claims;
		try {
			claims = processor().process(header.substring(7).trim(), null);
		} catch (IOException e) {
			ourLog.warn("cannot reach the token issuer: {}", e.getMessage());
			throw unauthenticated("the token issuer cannot be reached");
		} catch (Exception e) {
			throw unauthenticated("invalid_token: " + e.getMessage());
		}
		Set<String> scopes = new HashSet<>();
		Object scope = claims.getClaim("scope");
		if (scope instanceof String text) {
			for (String s : text.trim().split("\\s+")) {
				scopes.add(s);
			}
		}
		return scopes;
	}

	private static AuthenticationException unauthenticated(String message) {
		AuthenticationException e = new AuthenticationException(message);
		e.addResponseHeader("WWW-Authenticate", "Bearer realm=\"hapi-sandbox\"");
		return e;
	}

	private ConfigurableJWTProcessor<SecurityContext> processor() throws IOException {
		ConfigurableJWTProcessor<SecurityContext> p = processor;
		if (p != null) {
			return p;
		}
		synchronized (this) {
			if (processor == null) {
				JWKSource<SecurityContext> keys =
						JWKSourceBuilder.create(new URL(settings.jwksUrl())).build();
				DefaultJWTProcessor<SecurityContext> built = new DefaultJWTProcessor<>();
				built.setJWSKeySelector(new JWSVerificationKeySelector<>(
						Set.of(JWSAlgorithm.RS256, JWSAlgorithm.RS384, JWSAlgorithm.ES256, JWSAlgorithm.ES384),
						keys));
				built.setJWTClaimsSetVerifier(new DefaultJWTClaimsVerifier<>(
						settings.audience(),
						new JWTClaimsSet.Builder().issuer(settings.issuer()).build(),
						Set.of("exp", "iat")));
				processor = built;
			}
			return processor;
		}
	}

	record Need(String type, char perm) {}

	private List<Need> needs(RequestDetails request, RestOperationTypeEnum operation) {
		String type = request.getResourceName() == null ? "*" : request.getResourceName();
		switch (operation) {
			case READ, VREAD, HISTORY_INSTANCE, HISTORY_TYPE:
				return List.of(new Need(type, 'r'));
			case SEARCH_TYPE:
				return List.of(new Need(type, 's'));
			case CREATE:
				return List.of(new Need(type, 'c'));
			case UPDATE, PATCH, META_ADD, META_DELETE:
				return List.of(new Need(type, 'u'));
			case DELETE:
				return List.of(new Need(type, 'd'));
			case TRANSACTION, BATCH:
				return bundleNeeds(request);
			case GET_PAGE:
				return List.of(); // the page id was handed out only to a search already allowed
			default:
				return List.of(new Need(type, 'r'));
		}
	}

	private List<Need> bundleNeeds(RequestDetails request) {
		byte[] raw = request.loadRequestContents();
		String body = raw == null ? "" : new String(raw, StandardCharsets.UTF_8).trim();
		IParser parser = body.startsWith("<") ? context.newXmlParser() : context.newJsonParser();
		Bundle bundle;
		try {
			bundle = parser.parseResource(Bundle.class, body);
		} catch (RuntimeException e) {
			throw new InvalidRequestException("the Bundle cannot be parsed: " + e.getMessage());
		}
		List<Need> needs = new ArrayList<>();
		for (Bundle.BundleEntryComponent entry : bundle.getEntry()) {
			Bundle.BundleEntryRequestComponent req = entry.getRequest();
			String url = req.getUrl() == null ? "" : req.getUrl();
			String path = url.split("\\?", 2)[0];
			String[] parts = path.replaceAll("^/+", "").split("/");
			String entryType = parts[0].isEmpty() ? "*" : parts[0];
			Bundle.HTTPVerb method = req.getMethod();
			if (method == null) {
				throw new InvalidRequestException("Bundle.entry.request.method is required");
			}
			switch (method) {
				case POST -> needs.add(new Need(entryType, 'c'));
				case PUT, PATCH -> needs.add(new Need(entryType, 'u'));
				case DELETE -> needs.add(new Need(entryType, 'd'));
				default -> needs.add(new Need(entryType, parts.length > 1 && !url.contains("?") ? 'r' : 's'));
			}
		}
		return needs;
	}
}

package org.infusionbridge.sandbox.auth;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import org.springframework.core.env.Environment;

/**
 * Who issues the tokens this sandbox accepts: {@code hapi.auth.issuer} (env HAPI_AUTH_ISSUER; unset =
 * no token checks), {@code hapi.auth.audience} (HAPI_AUTH_AUDIENCE, default "hapi-sandbox"), and
 * optionally {@code hapi.auth.jwks-url} / {@code hapi.auth.token-endpoint}; by default both come
 * from the issuer's OpenID discovery document, read on first use (the identity provider may
 * start after this server).
 */
public final class AuthSettings {

	private final String issuer;
	private final String audience;
	private volatile String jwksUrl;
	private volatile String tokenEndpoint;

	public AuthSettings(String issuer, String audience, String jwksUrl, String tokenEndpoint) {
		this.issuer = issuer;
		this.audience = audience;
		this.jwksUrl = jwksUrl;
		this.tokenEndpoint = tokenEndpoint;
	}

	/** The settings from the Spring environment, or null when token checks are off. */
	public static AuthSettings from(Environment env) {
		String issuer = env.getProperty("hapi.auth.issuer", "");
		if (issuer.isBlank()) {
			return null;
		}
		return new AuthSettings(
				issuer.replaceAll("/+$", ""),
				env.getProperty("hapi.auth.audience", "hapi-sandbox"),
				blankToNull(env.getProperty("hapi.auth.jwks-url")),
				blankToNull(env.getProperty("hapi.auth.token-endpoint")));
	}

	private static String blankToNull(String value) {
		return value == null || value.isBlank() ? null : value;
	}

	public String issuer() {
		return issuer;
	}

	public String audience() {
		return audience;
	}

	public String jwksUrl() throws IOException {
		if (jwksUrl == null) {
			discover();
		}
		return jwksUrl;
	}

	public String tokenEndpoint() throws IOException {
		if (tokenEndpoint == null) {
			discover();
		}
		return tokenEndpoint;
	}

	private synchronized void discover() throws IOException {
		HttpRequest request = HttpRequest.newBuilder(URI.create(issuer + "/.well-known/openid-configuration"))
				.timeout(Duration.ofSeconds(10))
				.GET()
				.build();
		HttpResponse<String> response;
		try {
			response = HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());
		} catch (InterruptedException e) {
			Thread.currentThread().interrupt();
			throw new IOException("interrupted while reading the issuer's discovery document", e);
		}
		if (response.statusCode() != 200) {
			throw new IOException("the issuer's discovery document answered " + response.statusCode());
		}
		JsonNode doc = new ObjectMapper().readTree(response.body());
		if (jwksUrl == null) {
			jwksUrl = doc.path("jwks_uri").asText(null);
		}
		if (tokenEndpoint == null) {
			tokenEndpoint = doc.path("token_endpoint").asText(null);
		}
		if (jwksUrl == null || tokenEndpoint == null) {
			throw new IOException("the issuer's discovery document has no jwks_uri or token_endpoint");
		}
	}
}

package org.infusionbridge.sandbox.auth;

import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * {@code GET /fhir/.well-known/smart-configuration}: where a backend service gets its tokens
 * (SMART App Launch 2.x discovery), served in front of the FHIR servlet. Public.
 */
public class SmartConfigurationFilter extends OncePerRequestFilter {

	private final AuthSettings settings;

	public SmartConfigurationFilter(AuthSettings settings) {
		this.settings = settings;
	}

	@Override
	protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
			throws ServletException, IOException {
		if (!"GET".equals(request.getMethod())) {
			chain.doFilter(request, response);
			return;
		}
		Map<String, Object> doc = new LinkedHashMap<>();
		doc.put("issuer", settings.issuer());
		try {
			doc.put("token_endpoint", settings.tokenEndpoint());
			doc.put("jwks_uri", settings.jwksUrl());
		} catch (IOException e) {
			response.sendError(503, "the identity provider does not answer: " + e.getMessage());
			return;
		}
		doc.put("grant_types_supported", List.of("client_credentials"));
		doc.put("token_endpoint_auth_methods_supported", List.of("private_key_jwt"));
		doc.put("token_endpoint_auth_signing_alg_values_supported", List.of("RS384", "ES384"));
		doc.put("scopes_supported", List.of("system/*.cruds", "system/*.rs"));
		doc.put("capabilities", List.of("client-confidential-asymmetric", "permission-v1", "permission-v2"));
		response.setContentType("application/json");
		new ObjectMapper().writeValue(response.getOutputStream(), doc);
	}
}

package org.infusionbridge.sandbox.auth;

import java.util.Set;

/**
 * SMART system scopes: {@code system/<Type|*>.<perms>} where perms is v2 ({@code c r u d s}, any
 * subset in that order, e.g. {@code rs}, {@code cud}) or v1 ({@code read} = rs, {@code write} =
 * cud, {@code *} = cruds).
 */
public final class SystemScopes {

	private SystemScopes() {}

	/** Does any scope in {@code granted} allow permission {@code perm} (one of c r u d s) on {@code type}? */
	public static boolean grants(Set<String> granted, String type, char perm) {
		for (String scope : granted) {
			if (grantsOne(scope, type, perm)) {
				return true;
			}
		}
		return false;
	}

	static boolean grantsOne(String scope, String type, char perm) {
		if (!scope.startsWith("system/")) {
			return false;
		}
		String rest = scope.substring("system/".length());
		int dot = rest.lastIndexOf('.');
		if (dot <= 0) {
			return false;
		}
		String scopeType = rest.substring(0, dot);
		String perms = expand(rest.substring(dot + 1));
		if (!scopeType.equals("*") && !scopeType.equals(type)) {
			return false;
		}
		return perms.indexOf(perm) >= 0;
	}

	static String expand(String perms) {
		switch (perms) {
			case "read":
				return "rs";
			case "write":
				return "cud";
			case "*":
				return "cruds";
			default:
				return perms.matches("c?r?u?d?s?") ? perms : "";
		}
	}
}

package org.infusionbridge.interop;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.parser.StrictErrorHandler;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.api.MethodOutcome;
import ca.uhn.fhir.rest.api.SummaryEnum;
import ca.uhn.fhir.rest.client.api.IGenericClient;
import ca.uhn.fhir.rest.client.interceptor.AdditionalRequestHeadersInterceptor;
import ca.uhn.fhir.rest.server.exceptions.BaseServerResponseException;
import ca.uhn.fhir.rest.server.exceptions.PreconditionFailedException;
import ca.uhn.fhir.rest.server.exceptions.ResourceGoneException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.CapabilityStatement;
import org.hl7.fhir.r4.model.IdType;
import org.hl7.fhir.r4.model.MedicationRequest;
import org.hl7.fhir.r4.model.Reference;

/**
 * Drives Infusion Bridge's FHIR base with the HAPI FHIR generic client and prints one JSON
 * line per step: {"step": ..., "ok": true|false, "detail": ...}. It always exits 0 when it
 * could run at all; the pytest side asserts each step.
 *
 * <p>Arguments: base URL, path of a MedicationRequest JSON template, then any number of
 * "Name: value" request headers (the suite's auth headers).
 *
 * <p>The context's parser is strict: every resource the client parses (all of them) fails
 * the step if it is not valid R4 structure.
 */
public final class HapiClientDriver {

  private interface Step {
    String run() throws Exception;
  }

  private final FhirContext ctx = FhirContext.forR4();
  private final IGenericClient client;
  private final AdditionalRequestHeadersInterceptor extraHeaders;
  private final String template;
  private final String patient = "hapi-" + UUID.randomUUID().toString().substring(0, 12);
  private final Map<String, String> results = new LinkedHashMap<>();

  private HapiClientDriver(String base, String template, List<String> headers) {
    ctx.setParserErrorHandler(new StrictErrorHandler());
    ctx.getRestfulClientFactory().setSocketTimeout(30_000);
    this.client = ctx.newRestfulGenericClient(base);
    client.setEncoding(EncodingEnum.JSON);
    // the suite's headers (the bearer token) go on every request of every client here
    extraHeaders = new AdditionalRequestHeadersInterceptor();
    for (String header : headers) {
      String[] parts = header.split(":", 2);
      extraHeaders.addHeaderValue(parts[0].trim(), parts[1].trim());
    }
    client.registerInterceptor(extraHeaders);
    this.template = template;
  }

  public static void main(String[] args) throws Exception {
    String template = Files.readString(Path.of(args[1]));
    List<String> headers = List.of(args).subList(2, args.length);
    new HapiClientDriver(args[0], template, headers).runAll();
  }

  private MedicationRequest newOrder() {
    MedicationRequest order = ctx.newJsonParser().parseResource(MedicationRequest.class, template);
    order.setId((String) null);
    order.getIdentifierFirstRep().setValue("HAPI-" + UUID.randomUUID());
    order.setSubject(new Reference("Patient/" + patient));
    return order;
  }

  private static void check(boolean condition, String message) {
    if (!condition) {
      throw new AssertionError(message);
    }
  }

  private void step(String name, Step body) {
    String detail;
    boolean ok;
    try {
      detail = body.run();
      ok = true;
    } catch (Throwable e) {
      ok = false;
      detail = e.getClass().getSimpleName() + ": " + e.getMessage();
    }
    System.out.println(
        "{\"step\": " + quote(name) + ", \"ok\": " + ok + ", \"detail\": " + quote(detail) + "}");
    System.out.flush();
  }

  private static String quote(String s) {
    StringBuilder out = new StringBuilder("\"");
    for (char c : String.valueOf(s).toCharArray()) {
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    return out.append('"').toString();
  }

  private void runAll() {
    step("capabilities", () -> {
      CapabilityStatement cs = client.capabilities().ofType(CapabilityStatement.class).execute();
      check("4.0.1".equals(cs.getFhirVersion().toCode()), "fhirVersion " + cs.getFhirVersion());
      var orders = cs.getRestFirstRep().getResource().stream()
          .filter(r -> "MedicationRequest".equals(r.getType())).findFirst().orElseThrow();
      check(orders.getSearchParam().stream().anyMatch(p -> "identifier".equals(p.getName())),
          "no identifier search parameter");
      return "CapabilityStatement parsed";
    });

    step("create-read-vread", () -> {
      MethodOutcome created = client.create().resource(newOrder()).execute();
      check(Boolean.TRUE.equals(created.getCreated()), "not created");
      IdType id = (IdType) created.getId();
      check("1".equals(id.getVersionIdPart()), "Location version " + id.getValue());
      // the failure: read().withId(outcome.getId()) follows Location (a vread)
      MedicationRequest byLocation =
          client.read().resource(MedicationRequest.class).withId(id).execute();
      MedicationRequest read =
          client.read().resource(MedicationRequest.class).withId(id.getIdPart()).execute();
      MedicationRequest v1 =
          client.vread(MedicationRequest.class, id.getIdPart(), "1");
      check("1".equals(v1.getMeta().getVersionId()), "vread meta " + v1.getMeta().getVersionId());
      check(read.getSubject().getReference().equals(byLocation.getSubject().getReference()),
          "read and read-by-Location differ");
      return id.getValue();
    });

    step("conditional-create", () -> {
      MedicationRequest order = newOrder();
      String condition = "MedicationRequest?identifier="
          + order.getIdentifierFirstRep().getSystem() + "|" + order.getIdentifierFirstRep().getValue();
      MethodOutcome first = client.create().resource(order).conditionalByUrl(condition).execute();
      MethodOutcome again = client.create().resource(order).conditionalByUrl(condition).execute();
      check(Boolean.TRUE.equals(first.getCreated()), "first not created");
      check(!Boolean.TRUE.equals(again.getCreated()), "second created a duplicate");
      check(first.getId().getIdPart().equals(again.getId().getIdPart()), "different ids");
      return first.getId().getIdPart();
    });

    step("update-read-modify-write", () -> {
      IdType id = (IdType) client.create().resource(newOrder()).execute().getId();
      MedicationRequest read =
          client.read().resource(MedicationRequest.class).withId(id.getIdPart()).execute();
      read.setStatus(MedicationRequest.MedicationRequestStatus.ONHOLD);
      MethodOutcome updated = client.update().resource(read).execute();
      check("2".equals(updated.getId().getVersionIdPart()), "version " + updated.getId());
      MedicationRequest after =
          client.read().resource(MedicationRequest.class).withId(id.getIdPart()).execute();
      check(after.getStatus() == MedicationRequest.MedicationRequestStatus.ONHOLD,
          "status " + after.getStatus());
      return updated.getId().getValue();
    });

    step("stale-if-match-412", () -> {
      IdType id = (IdType) client.create().resource(newOrder()).execute().getId();
      MedicationRequest v1 =
          client.read().resource(MedicationRequest.class).withId(id.getIdPart()).execute();
      v1.setStatus(MedicationRequest.MedicationRequestStatus.ONHOLD);
      client.update().resource(v1).execute();
      v1.setStatus(MedicationRequest.MedicationRequestStatus.STOPPED);
      try {
        client.update().resource(v1).withAdditionalHeader("If-Match", "W/\"1\"").execute();
        throw new AssertionError("a stale If-Match was accepted");
      } catch (PreconditionFailedException expected) {
        return "412: " + expected.getMessage();
      }
    });

    step("delete", () -> {
      IdType id = (IdType) client.create().resource(newOrder()).execute().getId();
      client.delete().resourceById("MedicationRequest", id.getIdPart()).execute();
      try {
        client.read().resource(MedicationRequest.class).withId(id.getIdPart()).execute();
        throw new AssertionError("read after delete succeeded");
      } catch (ResourceGoneException expected) {
        return "410 after delete";
      }
    });

    step("transaction", () -> {
      Bundle tx = new Bundle().setType(Bundle.BundleType.TRANSACTION);
      for (int i = 0; i < 2; i++) {
        tx.addEntry().setFullUrl("urn:uuid:" + UUID.randomUUID()).setResource(newOrder())
            .getRequest().setMethod(Bundle.HTTPVerb.POST).setUrl("MedicationRequest");
      }
      Bundle response = client.transaction().withBundle(tx).execute();
      check(response.getType() == Bundle.BundleType.TRANSACTIONRESPONSE, "type " + response.getType());
      for (var entry : response.getEntry()) {
        check(entry.getResponse().getStatus().startsWith("201"), entry.getResponse().getStatus());
      }
      return response.getEntry().size() + " created";
    });

    step("search-paging-both-ways", () -> {
      Set<String> created = new HashSet<>();
      for (int i = 0; i < 5; i++) {
        created.add(client.create().resource(newOrder()).execute().getId().getIdPart());
      }
      Bundle page = client.search().forResource(MedicationRequest.class)
          .where(MedicationRequest.PATIENT.hasId("Patient/" + patient)).count(2)
          .returnBundle(Bundle.class).execute();
      check(page.getTotal() >= 5, "total " + page.getTotal());
      List<String> firstIds = ids(page);
      Set<String> seen = new HashSet<>(firstIds);
      Bundle second = null;
      while (page.getLink(Bundle.LINK_NEXT) != null) {
        page = client.loadPage().next(page).execute();
        second = second == null ? page : second;
        seen.addAll(ids(page));
      }
      check(seen.containsAll(created), "paging missed orders: " + seen);
      Bundle back = client.loadPage().previous(second).execute();
      check(ids(back).equals(firstIds), "previous page " + ids(back) + " != " + firstIds);
      return seen.size() + " found, previous page matches";
    });

    step("summary-count", () -> {
      Bundle counted = client.search().forResource(MedicationRequest.class)
          .where(MedicationRequest.PATIENT.hasId("Patient/" + patient))
          .summaryMode(SummaryEnum.COUNT).returnBundle(Bundle.class).execute();
      check(counted.getTotal() > 0 && counted.getEntry().isEmpty(),
          "total " + counted.getTotal() + ", entries " + counted.getEntry().size());
      return "total " + counted.getTotal();
    });

    step("json-only-406", () -> {
      IGenericClient xml = ctx.newRestfulGenericClient(client.getServerBase());
      xml.setEncoding(EncodingEnum.XML);
      xml.registerInterceptor(extraHeaders);
      try {
        xml.search().forResource(MedicationRequest.class).returnBundle(Bundle.class).execute();
        throw new AssertionError("XML was served");
      } catch (BaseServerResponseException expected) {
        check(expected.getStatusCode() == 406, "status " + expected.getStatusCode());
        return "406 for XML";
      }
    });
  }

  private static List<String> ids(Bundle bundle) {
    List<String> out = new ArrayList<>();
    for (var entry : bundle.getEntry()) {
      IBaseResource resource = entry.getResource();
      check(resource instanceof MedicationRequest, "entry is " + resource);
      out.add(resource.getIdElement().getIdPart());
    }
    return out;
  }
}

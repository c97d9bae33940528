#!/usr/bin/env python3
"""Smoke test of a running HAPI sandbox (stdlib only).

    python3 sandbox/hapi/smoke_test.py [BASE_URL]     # default http://127.0.0.1:$HAPI_PORT/fhir

Checks: metadata (4.0.1), CRUD with ETag/If-Match, paging (_count + next link), transaction with
urn:uuid references, conditional create (header and ifNoneExist), _history, a rest-hook Subscription
delivered to a local receiver, and $validate of a vital-signs heart-rate Observation.
Prints "N passed, N failed" and exits non-zero on any failure.
"""

import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

BASE = (sys.argv[1] if len(sys.argv) > 1 else f"http://127.0.0.1:{os.environ.get('HAPI_PORT', '8080')}/fhir").rstrip("/")
FHIR_JSON = "application/fhir+json"
RESULTS = []


def call(method, path, body=None, headers=None):
    url = path if path.startswith("http") else f"{BASE}/{path.lstrip('/')}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", FHIR_JSON)
    if data is not None:
        req.add_header("Content-Type", FHIR_JSON)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, dict(e.headers), json.loads(raw) if raw else None
        except ValueError:
            return e.code, dict(e.headers), raw.decode(errors="replace")


def check(name, cond, detail=""):
    RESULTS.append(bool(cond))
    print(f"{'PASS' if cond else 'FAIL'} {name}{'' if cond else ' -- ' + str(detail)[:300]}")


class Receiver(http.server.BaseHTTPRequestHandler):
    received = []

    def _handle(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        Receiver.received.append((time.time(), self.command, self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST = do_DELETE = _handle

    def log_message(self, *args):
        pass


def errors(outcome):
    return [i for i in (outcome or {}).get("issue", []) if i.get("severity") in ("error", "fatal")]


def main():
    tag = uuid.uuid4().hex[:8]

    s, _, cap = call("GET", "metadata")
    check("metadata is an R4 CapabilityStatement", s == 200 and cap["resourceType"] == "CapabilityStatement"
          and cap["fhirVersion"] == "4.0.1", (s, cap))

    # CRUD + ETag / If-Match, client-assigned numeric id
    pid = f"9{int(time.time() * 1000) % 10**9}"
    s, h, _ = call("PUT", f"Patient/{pid}", {"resourceType": "Patient", "id": pid, "name": [{"family": "Smoke"}]})
    check("PUT with client id creates (201) with ETag W/\"1\"", s == 201 and h.get("ETag") == 'W/"1"', (s, h))
    s, h, p = call("GET", f"Patient/{pid}")
    check("read", s == 200 and p["name"][0]["family"] == "Smoke", (s, p))
    p["name"][0]["family"] = "Smoke2"
    s, h, _ = call("PUT", f"Patient/{pid}", p, {"If-Match": 'W/"1"'})
    check("update with matching If-Match", s == 200 and h.get("ETag") == 'W/"2"', (s, h))
    s, _, oo = call("PUT", f"Patient/{pid}", p, {"If-Match": 'W/"1"'})
    check("update with stale If-Match is rejected (HAPI: 409)", s in (409, 412), (s, oo))
    s, _, hist = call("GET", f"Patient/{pid}/_history")
    check("instance _history has 2 versions", s == 200 and len(hist.get("entry", [])) == 2, (s, hist))

    # paging
    for i in range(3):
        call("POST", "Patient", {"resourceType": "Patient", "identifier": [{"system": "urn:smoke:page", "value": f"{tag}-{i}"}]})
    s, _, b = call("GET", "Patient?_count=2")
    nxt = [link["url"] for link in b.get("link", []) if link["relation"] == "next"]
    check("search _count=2 gives 2 entries and a next link", s == 200 and len(b.get("entry", [])) == 2 and nxt, b)
    if nxt:
        s, _, b2 = call("GET", nxt[0])
        check("next page", s == 200 and len(b2.get("entry", [])) >= 1, (s, b2))

    # transaction with urn:uuid references + ifNoneExist
    pat_url, obs_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": pat_url, "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:smoke", "value": tag}]},
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier=urn:smoke|{tag}"}},
        {"fullUrl": obs_url, "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                          "subject": {"reference": pat_url}},
         "request": {"method": "POST", "url": "Observation"}}]}
    s, _, r = call("POST", "", tx)
    statuses = [e["response"]["status"] for e in r.get("entry", [])] if isinstance(r, dict) else r
    check("transaction with urn:uuid refs", s == 200 and statuses == ["201 Created", "201 Created"], (s, statuses))
    if s == 200:
        obs_id = r["entry"][1]["response"]["location"].split("/_history")[0]
        _, _, obs = call("GET", obs_id)
        check("urn:uuid reference rewritten", obs["subject"]["reference"].startswith("Patient/"), obs)
    s, _, r = call("POST", "", tx)
    statuses = [e["response"]["status"] for e in r.get("entry", [])] if isinstance(r, dict) else r
    check("second transaction: ifNoneExist matches (200 OK)", s == 200 and statuses[0] == "200 OK", (s, statuses))

    # conditional create via header
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:smoke:cond", "value": tag}]}
    s1, _, _ = call("POST", "Patient", body, {"If-None-Exist": f"identifier=urn:smoke:cond|{tag}"})
    s2, _, _ = call("POST", "Patient", body, {"If-None-Exist": f"identifier=urn:smoke:cond|{tag}"})
    _, _, b = call("GET", f"Patient?identifier={urllib.parse.quote(f'urn:smoke:cond|{tag}')}")
    check("conditional create twice -> 201 then 200, one resource", (s1, s2) == (201, 200) and b.get("total") == 1, (s1, s2, b.get("total")))

    # rest-hook subscription
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{srv.server_address[1]}/hook"
    sub = {"resourceType": "Subscription", "status": "requested", "reason": "smoke", "criteria": "MedicationRequest?",
           "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": FHIR_JSON, "header": ["X-Smoke: " + tag]}}
    s, _, sub = call("POST", "Subscription", sub)
    t0, status = time.time(), None
    while time.time() - t0 < 30:
        status = call("GET", f"Subscription/{sub['id']}")[2]["status"]
        if status == "active":
            break
        time.sleep(0.25)
    check(f"subscription active after {time.time() - t0:.1f} s", status == "active", status)
    t0 = time.time()
    s, _, mr = call("POST", "MedicationRequest", {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                                                  "medicationCodeableConcept": {"text": "smoke"}, "subject": {"reference": f"Patient/{pid}"}})
    want = f"/hook/MedicationRequest/{mr['id']}"
    hit = None
    while time.time() - t0 < 20 and not hit:
        hit = next((r for r in Receiver.received if r[1] == "PUT" and r[2] == want), None)
        time.sleep(0.1)
    check(f"rest-hook PUT {want} delivered" + (f" after {hit[0] - t0:.1f} s" if hit else ""),
          hit and hit[3].get("X-Smoke") == tag and json.loads(hit[4])["id"] == mr["id"], Receiver.received)
    call("DELETE", f"Subscription/{sub['id']}")
    srv.shutdown()

    # $validate
    hr = {"resourceType": "Observation", "status": "final",
          "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
          "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
          "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2024-05-01T10:00:00Z",
          "valueQuantity": {"value": 72, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}}
    t0 = time.time()
    s, _, oo = call("POST", "Observation/$validate", hr)
    check(f"$validate valid heart rate: no errors ({time.time() - t0:.1f} s)", s == 200 and not errors(oo), oo)
    s, _, oo = call("POST", "Observation/$validate", dict(hr, meta={"profile": ["http://hl7.org/fhir/StructureDefinition/heartrate"]}))
    check("$validate against the heartrate profile: no errors", s == 200 and not errors(oo), oo)
    bad = {k: v for k, v in hr.items() if k != "status"}
    s, _, oo = call("POST", "Observation/$validate", bad)
    check("$validate without status: an error issue", any("status" in (i.get("diagnostics") or "") for i in errors(oo)), (s, oo))

    passed, failed = RESULTS.count(True), RESULTS.count(False)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

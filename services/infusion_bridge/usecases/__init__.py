"""Use cases: one home per operation the service offers.

Each use case owns its unit of work (opens and commits the transaction), makes its EHR
calls, and raises only :mod:`..domain.errors` — never an HTTP status. Entry points
(``api/``, ``web/``, the CLI, background tasks) parse, call one use case, and render.

    order_intake    the steps every arriving order takes (map, check, version, store)
    orders          accept one order (create/update/conditional create), delete, read,
                    read a version, history, list
    order_search    MedicationRequest search and the criteria of a conditional create
    order_batches   accept a batch or transaction Bundle of orders
    order_sync      pull changed orders from the EHR, page by page (and its scheduling)
    sessions        open an infusion session, record an event, read it
    writeback       the write-back Bundle of a finished session
    deliveries      list write-backs, send a dead one again
    records         clinician reads: session lists, history, FHIR searches and reads
    readiness       does the database answer, does the EHR answer
"""

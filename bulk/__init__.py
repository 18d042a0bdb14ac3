"""Bulk data: SMART Bulk Data export jobs, a patient's whole record, and NDJSON import.

request.py      an $export kick-off's parameters, checked (ExportRequest)
jobs.py         export jobs in the database: created, claimed with a lease, checkpointed, finished
reader.py       what a caller may read of a type, streamed by keyset pages (access rules applied)
compartment.py  the R4 Patient compartment (derived data under data/), as SQL conditions
runner.py       one export job: NDJSON files written type by type, resumable from its checkpoint
worker.py       the background loop of each `serve` process that claims and runs jobs
everything.py   Patient/$everything: a patient's record, keyset-paged
importer.py     NDJSON files and Bundles into the repository, batched, resumable, with an error file
"""

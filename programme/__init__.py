"""The programme's view: worklists, indicators (Measure / MeasureReport) and Puente's own SearchParameters.

Everything here reads through the caller's `FhirRepository`, so a CHW's worklist holds only what her
token lets her see, exactly as a search would. The rules are pure functions of the loaded records
(`records.Records`), which is what the tests check against hand-computed answers.
"""

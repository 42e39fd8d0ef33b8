"""A shop's own data as a source: its export files checked whole, then landed in `raw`.

`churn.importing.exports.import_exports` reads the files (the raw tables, or one file of
orders or order lines; CSV or Parquet), checks every value and every rule of the
contract (`contract`), and lands the rows in one transaction (`landing`); a single bad
row refuses the whole import with a one-line summary, the first rows in the log and all
of them in a rejected-rows file, and raw stays as it was.
"""

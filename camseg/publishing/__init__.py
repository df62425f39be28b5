"""Stage 8, publishing: the book's helpers, tables, figures and the PDF report.

* :mod:`.book`: a chapter's one set-up line and the numbers its text quotes.
* :mod:`.tables`: every results table (book, PDF and command line alike).
* :mod:`.viz`: the figures; :mod:`.report`: the two-page PDF; :mod:`.notebook`: glue for lone notebooks.
"""

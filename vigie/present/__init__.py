"""What people read: the report, the Oversight view's pages and the alert e-mails.

One room for every reader-facing output, so that they render the same templates
(``templates/``) from the same query functions (``query.py``) and the same translations
(``locale/``, gettext catalogues through Babel): a page and a filed report cannot disagree.
Nothing below ``vigie.rules`` imports from here.
"""

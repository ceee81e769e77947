"""Words that reach people through data rather than code: rule titles (from
rules/catalogue.yml), kinds of source rows, families of rules, units of limits. Marked here
so that ``make messages`` extracts them; tests/test_i18n.py checks the list against the
catalogue and that French translates every one."""


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "mark, do not translate yet"
    return message


RULE_TITLES = [
    N_('Kept beyond the retention limit'),
    N_('Hold set without a procedure reference'),
    N_("Drone footage of a home's interior kept beyond 48 hours"),
    N_('Consultation without justification, or export/share without procedure or recipient'),
    N_('Recording consulted after its retention limit'),
    N_('LAPI read without a match consulted without a procedure reference'),
    N_('Stored drone footage consulted other than to report to the judicial authority'),
    N_('Purpose code not allowed for the device class'),
    N_('Purpose code missing'),
    N_('Recording or flight without a valid authorisation'),
    N_("Flight outside its authorisation's period or purposes"),
    N_('Flight outside its authorised perimeter'),
    N_('Drone recorded sound'),
    N_('Drone ran facial recognition'),
    N_("Gap in a source's sequence numbers"),
    N_('Consultation that does not say who'),
]
ROW_KINDS = [N_("recording"), N_("audit event"), N_("camera"), N_("authorisation"), N_("event"),
             N_("flight"), N_("read"), N_("query")]
FAMILIES = [N_("Retention"), N_("Access"), N_("Purpose"), N_("Authorisation"), N_("Prohibited processing"),
            N_("Logging")]
UNITS = [N_("calendar month"), N_("day"), N_("hour"), N_("codes"), N_("code")]

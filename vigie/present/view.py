"""The Oversight view: server-rendered pages of findings, evidence, quarantine and sources.

``create_app()`` builds the FastAPI app that the Airflow plugin (``plugins/vigie_view.py``)
mounts at ``/vigie``. Every route depends on ``user``, a FastAPI dependency that returns who
is reading or raises 401/403: in Airflow it is ``airflow_user()``, Airflow's own
``get_user`` (a bearer token from ``POST /auth/token`` or the UI's JWT cookie) plus
``requires_access_dag("GET")`` on the ``vigie_oversight`` DAG. A mounted app inherits none of
the API server's dependencies, so they are declared here, on the app itself.

Pages read only the *published* warehouse (``db.reader``), one read-only connection per
request, closed at the end of it; handlers are plain ``def`` so FastAPI runs them (DuckDB,
PDF rendering) in its thread pool, never on the event loop. Every findings page, evidence
page, API call and report is recorded in the access log (``vigie.present.access_log``).
Filters are query parameters (GET), so a page is a link that can be bookmarked and shared.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations of the handlers
# below, which name aliases local to create_app().
import json
import mimetypes
import threading
from contextlib import contextmanager
from datetime import timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

# DuckDB shares one database instance (and its memory limit, 1 GB by default) between all
# connections of a process to the same file: twenty rule evaluations at once ran out of
# memory in tests. Requests beyond this many wait for a slot instead.
def _readers_max() -> int:
    """VIGIE_VIEW_READERS (default 4). A value that is not a whole number of 1 or more stops the
    plugin with an error naming the variable (Airflow lists it among the plugins' import
    errors), not int()'s bare ``invalid literal``."""
    from vigie.config import whole_number_env

    return whole_number_env("VIGIE_VIEW_READERS", 4, "readers")


READERS_MAX = _readers_max()
_READERS = threading.BoundedSemaphore(READERS_MAX)

OVERSIGHT_DAG = "vigie_oversight"  # reading the view = reading what this DAG produces
PAGE_SIZE = 500  # quarantined rows per page


# --- authentication ------------------------------------------------------------------------

def airflow_user() -> Callable[..., str]:
    """The dependency of every route in Airflow: Airflow's authenticated user (``get_user``:
    ``Authorization: Bearer <jwt>`` or the UI's ``_token`` cookie; 401 without, 403 for a bad
    token) who may read the ``vigie_oversight`` DAG (``requires_access_dag("GET")``, 403
    otherwise). Returns the user's name, for the access log."""
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag

    may_read = requires_access_dag("GET", param_dag_id=OVERSIGHT_DAG)

    def user(airflow_user=Depends(get_user), _may_read=Depends(may_read)) -> str:  # noqa: ANN001
        return airflow_user.get_name()

    return user


# --- reading -------------------------------------------------------------------------------

def _load_settings(config: Path | None):  # noqa: ANN202
    from vigie.config import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        raise HTTPException(503, f"configuration error: {exc}") from None


@contextmanager
def _reader(settings) -> Iterator[Any]:  # noqa: ANN001
    from vigie import db

    with _READERS:
        try:
            con = db.reader(settings.warehouse)
        except FileNotFoundError as exc:
            raise HTTPException(503, str(exc)) from None
        try:
            yield con
        finally:
            con.close()


# --- the app -------------------------------------------------------------------------------

def create_app(config: Path | None = None, *, user: Callable[..., str] | None = None) -> FastAPI:
    """The view's FastAPI app. ``config``: vigie.yml (else ``$VIGIE_CONFIG``, else ./vigie.yml),
    read at each request. ``user``: the authentication dependency (default ``airflow_user()``)."""
    from vigie.present import access_log, query
    from vigie.present.i18n import check_lang, environment, format_instant, gettext

    user_dep = user or airflow_user()
    # No /docs, /redoc or /openapi.json of FastAPI's own: /docs/ is the Data Docs, and an
    # anonymous caller learns nothing, not even the routes.
    app = FastAPI(title="Vigie Oversight view", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(user_dep)])
    User = Annotated[str, Depends(user_dep)]  # noqa: N806

    def settings():  # noqa: ANN202
        return _load_settings(config)

    def language(lang: Annotated[str | None, Query()] = None) -> str:
        try:
            return check_lang(lang)
        except ValueError as exc:
            raise HTTPException(400, f"lang: {exc}") from None

    Lang = Annotated[str, Depends(language)]  # noqa: N806

    def filters(
        rule: Annotated[list[str], Query()] = [],  # noqa: B006  (FastAPI copies defaults)
        holder: Annotated[list[str], Query()] = [],  # noqa: B006
        device_class: Annotated[list[str], Query()] = [],  # noqa: B006
        source: Annotated[list[str], Query()] = [],  # noqa: B006
        date_from: Annotated[str | None, Query(alias="from")] = None,
        date_to: Annotated[str | None, Query(alias="to")] = None,
        as_of: Annotated[str | None, Query()] = None,
        known_at: Annotated[str | None, Query()] = None,
    ) -> dict:
        return {"rules": rule, "holders": holder, "device_classes": device_class, "sources": source,
                "date_from": date_from, "date_to": date_to, "as_of": as_of, "known_at": known_at}

    Filters = Annotated[dict, Depends(filters)]  # noqa: N806

    def selection(s, raw: dict) -> "query.Selection":  # noqa: ANN001
        try:
            return query.Selection.parse(s.timezone, **raw)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    def page(request: Request, lang: str, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "").rstrip("/")

        def link(path: str, params: list[tuple[str, str]] | None = None) -> str:
            params = [*(params or []), *([("lang", lang)] if lang != "fr" else [])]
            return f"{base}{path}" + (f"?{urlencode(params)}" if params else "")

        other = "en" if lang == "fr" else "fr"
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
        other_lang_url = f"{request.url.path}?{urlencode([*kept, ('lang', other)])}"
        html = environment(lang).get_template(template).render(
            link=link, quote=lambda v: quote(v, safe=""), current=request.url.path,
            other_lang_url=other_lang_url, **context)
        return HTMLResponse(html, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        """401/403 and errors: JSON for API clients, a short page (with a login link) for a browser."""
        headers = getattr(exc, "headers", None)
        if "text/html" not in request.headers.get("accept", "") or request.url.path.endswith("/api/findings"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
        lang = request.query_params.get("lang") if request.query_params.get("lang") in ("fr", "en") else "fr"
        login = "/auth/login?" + urlencode({"next": str(request.url)})
        return page(request, lang, "view/error.html", status=exc.status_code, code=exc.status_code,
                    detail=str(exc.detail), login=login if exc.status_code in (401, 403) else None)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"detail": json.loads(json.dumps(exc.errors(), default=str))}, status_code=400)

    def read_findings(s, sel) -> tuple[list, list, str | None]:  # noqa: ANN001
        """(findings of the selection, findings of the period without the filters, `rules_elsewhere`)."""
        with _reader(s) as con:
            everything = query.findings(con, s, sel.without_filters())
            elsewhere = rules_elsewhere(con, s)
        start, end = sel.bounds(s.timezone)
        return [f for f in everything if sel.matches(f, start, end)], everything, elsewhere

    def rules_elsewhere(con, s) -> str | None:  # noqa: ANN001
        """The fingerprint of the rules the findings were evaluated with, when another version or
        configuration installed them (the page says so, as a report does); else None."""
        from vigie import rules

        installed = rules.installed_fingerprint(con)
        return None if installed == rules.fingerprint(s) else (installed or "—")

    def facts(s, sel, total: int) -> dict:  # noqa: ANN001
        """What _facts.html states: the question asked and how many findings answer it."""
        return {"tz": s.timezone, "as_of": sel.as_of, "known_at": sel.known_at, "total": total,
                "period_from": sel.date_from.isoformat() if sel.date_from else None,
                "period_to": sel.date_to.isoformat() if sel.date_to else None,
                "filters": [(n, v) for n, v in (("rule", sel.rules), ("holder", sel.holders),
                                                ("device_class", sel.device_classes), ("source", sel.sources)) if v]}

    def finding_link(request: Request, sel, lang: str, absolute: bool = False) -> Callable:  # noqa: ANN001
        """A finding's page in the view (an absolute URL in a downloaded report)."""
        base = (str(request.base_url) if absolute else request.scope.get("root_path", "")).rstrip("/")
        params = urlencode(sel.query_params()[:2] + ([("lang", lang)] if lang != "fr" else []))
        return lambda f: (f"{base}/findings/{quote(f.rule_code, safe='')}/{quote(f.source, safe='')}/"
                          f"{quote(f.subject_id, safe='')}?{params}")

    @app.get("/", response_class=HTMLResponse)
    def findings_page(request: Request, who: User, lang: Lang, raw: Filters) -> HTMLResponse:
        from vigie.present.charts import trend_svg
        from vigie.present.report import LISTED_PER_RULE
        from vigie.rules import catalogue

        s = settings()
        sel = selection(s, raw)
        found, everything, elsewhere = read_findings(s, sel)
        start, end = sel.bounds(s.timezone)
        summary = query.summarise(found, s.timezone, start, end)
        by_rule: dict[str, list] = {}
        for f in found:
            by_rule.setdefault(f.rule_code, []).append(f)
        rules = catalogue()
        groups = [(r, by_rule[r.code][: LISTED_PER_RULE["html"]], len(by_rule[r.code])) for r in rules if r.code in by_rule]
        sha = query.findings_sha256(found)
        chart = None
        if summary.weeks and found:
            chart = trend_svg(summary.weeks, summary.trend, lang)
        access_log.record(s, who, "findings", access_log.filters_of(sel), findings=len(found), findings_sha256=sha)
        classes = sorted({c for r in rules for c in r.legal_ref} | {f.device_class for f in everything if f.device_class})
        return page(request, lang, "view/findings.html", who=who, params=sel.query_params(), sha256=sha,
                    summary=summary, groups=groups, finding_link=finding_link(request, sel, lang),
                    chart=chart,
                    choices={"rule": [(r.code, f"{r.code} {gettext(lang)(r.title)}") for r in rules],
                             "holder": [(h, h) for h in sorted({f.holder for f in everything if f.holder} | set(sel.holders))],
                             "device_class": [(c, c) for c in classes],
                             "source": [(x.name, x.name) for x in s.sources]},
                    chosen={"rule": sel.rules, "holder": sel.holders, "device_class": sel.device_classes,
                            "source": sel.sources}, rules_elsewhere=elsewhere, **facts(s, sel, len(found)))

    @app.get("/findings/{rule_code}/{source}/{subject_id:path}", response_class=HTMLResponse)
    def finding_page(request: Request, who: User, lang: Lang, rule_code: str, source: str, subject_id: str,
                     as_of: Annotated[str | None, Query()] = None,
                     known_at: Annotated[str | None, Query()] = None) -> HTMLResponse:
        from vigie.rules import catalogue

        s = settings()
        sel = selection(s, {"as_of": as_of, "known_at": known_at, "rules": [rule_code], "sources": [source]})
        with _reader(s) as con:
            matching = [f for f in query.findings(con, s, sel) if f.subject_id == subject_id]
            if not matching:
                raise HTTPException(404, f"no finding {rule_code} {source} {subject_id} as of "
                                         f"{format_instant(sel.as_of, s.timezone)}, known at "
                                         f"{format_instant(sel.known_at, s.timezone)}")
            finding = matching[0]
            rows = query.evidence(con, s, [finding], sel.known_at)[finding.key]
            elsewhere = rules_elsewhere(con, s)
        access_log.record(s, who, "finding", access_log.filters_of(sel), findings=1,
                          target=f"{rule_code}/{source}/{subject_id}")
        rule = next(r for r in catalogue() if r.code == rule_code)
        return page(request, lang, "view/finding.html", who=who, finding=finding, rule=rule, rows=rows,
                    params=sel.query_params(), tz=s.timezone, as_of=sel.as_of, known_at=sel.known_at,
                    rules_elsewhere=elsewhere)

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine_page(request: Request, who: User, lang: Lang,
                        source: Annotated[list[str], Query()] = [],  # noqa: B006
                        p: Annotated[int, Query(alias="page", ge=1)] = 1) -> HTMLResponse:
        s = settings()
        where = "WHERE source IN (SELECT unnest($sources::VARCHAR[]))" if source else ""
        with _reader(s) as con:
            counts = con.execute(f"SELECT source, reason, count(*) FROM oversight.quarantine {where} "
                                 "GROUP BY ALL ORDER BY 3 DESC, 1, 2", {"sources": source} if source else {}).fetchall()
            rows = con.execute(
                f"SELECT source, kind, ref, location, reason, left(raw, 300), batch_id, received_at "
                f"FROM oversight.quarantine {where} ORDER BY source, location LIMIT {PAGE_SIZE} OFFSET {(p - 1) * PAGE_SIZE}",
                {"sources": source} if source else {}).fetchall()
        total = sum(c[2] for c in counts)
        access_log.record(s, who, "quarantine", {"source": sorted(source)} if source else {}, target=f"page {p}")
        return page(request, lang, "view/quarantine.html", who=who, counts=counts, rows=rows, total=total,
                    page=p, pages=max(1, -(-total // PAGE_SIZE)), sources=[x.name for x in s.sources],
                    chosen=source, source_params=[("source", x) for x in source],
                    fmt=lambda v: format_instant(v, s.timezone))

    @app.get("/sources", response_class=HTMLResponse)
    def sources_page(request: Request, who: User, lang: Lang) -> HTMLResponse:
        s = settings()
        from vigie.health import source_health

        with _reader(s) as con:  # what `vigie sources` and the pipeline alerts read, the register too
            status = source_health(con, s, unlisted=True)
        access_log.record(s, who, "sources", {})
        return page(request, lang, "view/sources.html", who=who, sources=status,
                    fmt=lambda v: format_instant(v, s.timezone))

    @app.get("/api/findings")
    def api_findings(who: User, raw: Filters) -> JSONResponse:
        s = settings()
        sel = selection(s, raw)
        found, _, _ = read_findings(s, sel)
        access_log.record(s, who, "api_findings", access_log.filters_of(sel), findings=len(found),
                          findings_sha256=query.findings_sha256(found))
        return JSONResponse([dict(zip(query.REPORT_COLUMNS, f.row())) for f in found])

    @app.get("/report")
    def report(request: Request, who: User, lang: Lang, raw: Filters,
               format: Annotated[str, Query(pattern="^(html|pdf|csv)$")] = "html") -> Response:  # noqa: A002
        """The report of the selection (`vigie report`'s renderer). A plain `def`: the PDF is
        rendered in FastAPI's thread pool, never on the event loop."""
        from vigie.present.report import PdfError, render

        s = settings()
        sel = selection(s, raw)
        with _reader(s) as con:
            try:
                result = render(con, s, sel, format, lang, user=who, link=finding_link(request, sel, lang, absolute=True))
            except PdfError as exc:  # Chromium missing or failing: say so, not a bare 500
                raise HTTPException(503, str(exc)) from None
        stamp = sel.as_of.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        name = f"vigie-report-{stamp}.{format}"
        access_log.record(s, who, "report", access_log.filters_of(sel), findings_sha256=result.findings_sha256,
                          findings=result.count, target=f"{format} {lang}")
        return Response(result.content, media_type=result.media_type, headers={
            "Content-Disposition": f'attachment; filename="{name}"', "X-Findings-Sha256": result.findings_sha256})

    @app.get("/docs")
    def docs_root(request: Request, who: User) -> RedirectResponse:
        return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + "/docs/")

    @app.get("/docs/{path:path}")
    def data_docs(who: User, path: str = "") -> Response:
        """Great Expectations' Data Docs, read from their folder; nothing outside it."""
        from vigie.contracts import data_docs_index
        from vigie.pipeline import gx_root

        root = data_docs_index(gx_root(settings())).parent.resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root):
            raise HTTPException(404, "not found")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            raise HTTPException(404, "no Data Docs here yet: they are built by the Airflow tasks and `vigie run --gx`"
                                if not path else "not found")
        media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Response(target.read_bytes(), media_type=media)

    return app

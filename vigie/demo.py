"""`make demo`: the whole pipeline through Airflow itself, on a simulated estate.

1. simulate a realistic estate (a few thousand events, every rule planted) in var/demo/estate;
2. serve its body-camera API on loopback, from this process;
3. with a SQLite Airflow metadata database in var/demo/airflow, run every source DAG and then
   the oversight DAG with `airflow dags test`;
4. alerts: an SMTP server (aiosmtpd) and a webhook receiver run on loopback in this process;
   the oversight DAG sends the demo's alerts to them (holders' immediate alerts, the control
   body's digest, the webhook signed and verified);
5. print the findings by rule, the quarantine count, how many alerts went to whom, where
   things are, how to open the UI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from vigie import db
from vigie.config import load_settings
from vigie.contracts import data_docs_index
from vigie.orchestration import POOL, dag_specs
from vigie.pipeline import gx_root
from vigie.simulate.bodycam_server import BodycamServer
from vigie.simulate.estate import generate
from vigie.simulate.receivers import SmtpSink, WebhookSink

REPO = Path(__file__).resolve().parent.parent
TOKEN = "demo-token"
WEBHOOK_SECRET = "demo-webhook-secret"

ALERTS = """alerts:
  escalate_after_days: 7
  view_url: http://127.0.0.1:8080/vigie
  smtp: {{host: 127.0.0.1, port: {smtp_port}, sender: vigie@controle.example}}
  webhook: {{url: '{webhook_url}', secret_env: VIGIE_WEBHOOK_SECRET}}
  control_body: {{email: [controle@cnil.example], webhook: true}}
  operators: {{email: [exploitation@vigie.example]}}
  holders:
    "Ville de Lyon - Presqu'île": {{email: [cctv@mairie-lyon.example], webhook: true}}
    "CSP Lyon 1": {{email: [chef-de-poste@csp-lyon1.example]}}
    "DIPN 69": {{email: [permanence@dipn69.example]}}
    "Préfecture du Rhône": {{email: [lapi@rhone.gouv.example]}}
"""


def _airflow(args: list[str], env: dict, title: str) -> None:
    print(f"  {title} ...", end="", flush=True)
    run = subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], env=env, capture_output=True, text=True)
    ok = run.returncode == 0 and (args[0] != "dags" or "state=success" in run.stdout + run.stderr)
    print(" ok" if ok else " FAILED", flush=True)
    if not ok:
        sys.stderr.write((run.stdout + run.stderr)[-6000:])
        raise SystemExit(1)


def main(root: Path = REPO / "var" / "demo", n_events: int = 4000) -> int:
    shutil.rmtree(root, ignore_errors=True)
    info = generate(root / "estate", n_events=n_events, seed=7)
    print(f"simulated estate: {info.out_dir} ({n_events} rows across four sources, as of {info.as_of})")
    home = root / "airflow"
    with BodycamServer(info.events_path, token=TOKEN) as server, SmtpSink() as smtp, \
            WebhookSink(WEBHOOK_SECRET) as hook:
        config = info.config_path
        config.write_text(config.read_text().replace("http://127.0.0.1:PORT", server.url)
                          + ALERTS.format(smtp_port=smtp.port, webhook_url=hook.url))
        print(f"body-camera API served at {server.url}")
        print(f"alerts: SMTP server on 127.0.0.1:{smtp.port}, webhook receiver at {hook.url}")
        env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "VIGIE_CONFIG": str(config), "BODYCAM_TOKEN": TOKEN,
               "VIGIE_WEBHOOK_SECRET": WEBHOOK_SECRET}
        print("Airflow (SQLite metadata in var/demo/airflow):")
        _airflow(["db", "migrate"], env, "airflow db migrate")
        _airflow(["pools", "set", POOL, "1", "Vigie warehouse writer"], env, f"pool {POOL} (1 slot)")
        _, sources = dag_specs(config)
        for spec in sources:
            _airflow(["dags", "test", spec.dag_id], env, f"airflow dags test {spec.dag_id}")
        _airflow(["dags", "test", "vigie_oversight", "-c", json.dumps({"as_of": info.as_of})], env,
                 "airflow dags test vigie_oversight")

    settings = load_settings(config)
    mails = sorted(((str(m["To"]), m["X-Vigie-Kind"]) for m in smtp.messages))
    hooks = sorted((d.json.get("holder") or "control body", d.json["kind"], d.verified) for d in hook.requests)
    con = db.reader(settings.warehouse)
    ledger = con.execute("SELECT status, count(*) FROM main.alerts GROUP BY 1 ORDER BY 1").fetchall()
    by_rule = dict(con.execute("SELECT rule_code, count(*) FROM run_findings GROUP BY 1").fetchall())
    quarantined = con.execute("SELECT count(*) FROM oversight.quarantine").fetchone()[0]
    loads = con.execute("SELECT source, sum(received), sum(loaded), sum(duplicates), sum(quarantined) "
                        "FROM oversight.batches WHERE source <> 'register' GROUP BY 1 ORDER BY 1").fetchall()
    con.close()
    from vigie.rules import catalogue

    print("\nloads:")
    for source, received, loaded, dups, quar in loads:
        print(f"  {source:<12} received {received:>6}  loaded {loaded:>6}  duplicates {dups:>4}  quarantined {quar:>4}")
    print(f"\nfindings as of {info.as_of}, by rule:")
    for rule in catalogue():
        print(f"  {rule.code}  {by_rule.get(rule.code, 0):>5}  {rule.title}")
    print(f"\nquarantined rows: {quarantined}   (vigie quarantine --config {config})")
    from collections import Counter

    print(f"\nalerts sent by the oversight DAG: {len(mails)} e-mail(s), {len(hooks)} webhook call(s)")
    for (to, kind), n in sorted(Counter(mails).items()):
        print(f"  e-mail   {to:<36} {n} {kind}")
    for (holder, kind, verified), n in sorted(Counter(hooks).items()):
        print(f"  webhook  {holder:<36} {n} {kind}  (signature {'verified' if verified else 'INVALID'})")
    print(f"  ledger: {', '.join(f'{n} {status}' for status, n in ledger)}   (vigie alerts --config {config})")
    print(f"warehouse:  {settings.warehouse}   (read-only; views in schema `oversight`)")
    print(f"data docs:  {data_docs_index(gx_root(settings))}")
    for path in sorted((settings.warehouse.parent / "reports").glob("findings-*")):
        print(f"report:     {path}")
    print("Airflow UI and the Oversight view on the same files:\n"
          f"  AIRFLOW_HOME={home} AIRFLOW__CORE__DAGS_FOLDER={REPO / 'dags'} AIRFLOW__CORE__LOAD_EXAMPLES=False \\\n"
          f"  AIRFLOW__CORE__PLUGINS_FOLDER={REPO / 'plugins'} VIGIE_CONFIG={config} BODYCAM_TOKEN={TOKEN} \\\n"
          "  .venv/bin/airflow standalone\n"
          "  then open http://localhost:8080/vigie/ (sign in with the admin password standalone prints;\n"
          "  'Vigie' in the Browse menu)")
    if not mails or not all(v for _, _, v in hooks):
        print("no alert e-mail arrived, or a webhook signature did not verify", file=sys.stderr)
        return 1
    missing = [r.code for r in catalogue() if not by_rule.get(r.code)]
    if missing:
        print(f"rules with no finding: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Airflow plugin `vigie`: the Oversight view mounted at /vigie, with a navigation entry.

All the logic is in `vigie.present.view` (testable without a scheduler). Airflow does not
authenticate plugin apps (a mounted app inherits none of the API's dependencies), so the app
declares Airflow's own on every route: `get_user` (the bearer token of `POST /auth/token`, or
the UI's session cookie) and `requires_access_dag("GET")` on the `vigie_oversight` DAG.
The view reads `$VIGIE_CONFIG`'s published warehouse, never the writer's file.
"""

from airflow.plugins_manager import AirflowPlugin

from vigie.present.view import airflow_user, create_app

app = create_app(user=airflow_user())


class VigiePlugin(AirflowPlugin):
    name = "vigie"
    fastapi_apps = [{"app": app, "url_prefix": "/vigie", "name": "Vigie Oversight view"}]
    external_views = [{
        "name": "Vigie",
        "href": "/vigie/",
        "destination": "nav",
        "category": "browse",
        "url_route": "vigie",  # rendered inside the Airflow UI (same origin, same session)
    }]

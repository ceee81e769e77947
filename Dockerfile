# The Airflow image Vigie's services run: the official Airflow 3.3.2 image plus the locked
# dependencies and the vigie package. Built by docker-compose.yml.
FROM apache/airflow:3.3.2-python3.11
# WeasyPrint (PDF reports) needs pango and fonts from Debian.
USER root
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root requirements.lock pyproject.toml /opt/vigie/
COPY --chown=airflow:root vigie /opt/vigie/vigie
COPY --chown=airflow:root warehouse /opt/vigie/warehouse
COPY --chown=airflow:root expectations /opt/vigie/expectations
RUN pip install --no-cache-dir --require-hashes -r /opt/vigie/requirements.lock \
 && pip install --no-cache-dir --no-deps -e /opt/vigie

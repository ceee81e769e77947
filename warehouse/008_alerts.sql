-- The alert ledger (issue #10): one row per message to one recipient on one channel, and
-- the findings each message carried. Written by the warehouse writer only, under its lock.
-- Plain tables (no sequence, key constraint or enum) so that the same SQL runs on DuckLake:
-- the alert id is computed by Vigie, and unicity is kept by the one writer checking first.
--
-- An alert is recorded (status 'pending', committed) before it is sent and marked 'sent'
-- after: a crash in between repeats the message with the same alert_id, never loses it.
-- No secret is ever stored here: the payload is the message's data, the signature and the
-- SMTP credentials are computed or read at the moment of sending.

CREATE TABLE alerts (
    alert_id        VARCHAR NOT NULL,     -- stable: the repeat of a message carries the same id
    kind            VARCHAR NOT NULL,     -- immediate | digest | escalation | pipeline
    channel         VARCHAR NOT NULL,     -- email | webhook
    recipient       VARCHAR NOT NULL,     -- an e-mail address, or webhook:<holder> / webhook:control body
    holder          VARCHAR,              -- the holder the findings belong to (immediate, escalation)
    topic           VARCHAR,              -- digest day, or the pipeline problem (silence:<source>:<batch>...)
    as_of           TIMESTAMPTZ NOT NULL, -- the evaluation that produced it
    created_at      TIMESTAMPTZ NOT NULL,
    payload         VARCHAR NOT NULL,     -- the webhook body, byte for byte; e-mails are rendered from it
    status          VARCHAR NOT NULL,     -- pending | sent | failed
    attempts        INTEGER NOT NULL,
    last_error      VARCHAR,
    last_attempt_at TIMESTAMPTZ,
    sent_at         TIMESTAMPTZ
);

-- Which findings an alert carried: a finding is alerted once per (kind, channel, recipient).
CREATE TABLE alert_findings (
    alert_id    VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,
    channel     VARCHAR NOT NULL,
    recipient   VARCHAR NOT NULL,
    rule_code   VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    subject_id  VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ
);

CREATE VIEW oversight.alerts AS
SELECT a.alert_id, a.kind, a.channel, a.recipient, a.holder, a.topic,
       (SELECT count(*) FROM main.alert_findings f WHERE f.alert_id = a.alert_id
            AND f.channel = a.channel AND f.recipient = a.recipient) AS findings,
       a.status, a.attempts, a.last_error, a.as_of, a.created_at, a.sent_at
FROM main.alerts a;

/**
 * Schema migrations of the embedded store, applied in order; `PRAGMA user_version` records how
 * many ran. Append only: never edit a migration that has shipped.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE apps (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    app_key     TEXT NOT NULL,
    app_secret  TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE devices (
    reg_id          TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL,
    token_hash      TEXT NOT NULL,
    installation_id TEXT,
    attributes      TEXT NOT NULL,
    registered_at   INTEGER NOT NULL,
    last_seen_at    INTEGER,
    invalidated_at  INTEGER,
    invalid_reason  TEXT
  ) STRICT;
  CREATE INDEX devices_active ON devices (app_id) WHERE invalidated_at IS NULL;
  CREATE INDEX devices_installation ON devices (app_id, installation_id)
    WHERE installation_id IS NOT NULL AND invalidated_at IS NULL;
  CREATE INDEX devices_invalidated ON devices (app_id, invalidated_at)
    WHERE invalidated_at IS NOT NULL;
  CREATE INDEX devices_seen ON devices (coalesce(last_seen_at, registered_at))
    WHERE invalidated_at IS NULL;

  CREATE TABLE aliases (
    app_id TEXT NOT NULL,
    alias  TEXT NOT NULL,
    reg_id TEXT NOT NULL,
    set_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, alias)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX aliases_reg ON aliases (reg_id);

  CREATE TABLE user_accounts (
    app_id  TEXT NOT NULL,
    account TEXT NOT NULL,
    reg_id  TEXT NOT NULL,
    set_at  INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (app_id, account, reg_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX user_accounts_reg ON user_accounts (reg_id);

  CREATE TABLE topic_members (
    app_id        TEXT NOT NULL,
    topic         TEXT NOT NULL,
    reg_id        TEXT NOT NULL,
    subscribed_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, topic, reg_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX topic_members_reg ON topic_members (reg_id);

  CREATE TABLE messages (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target      TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    state       TEXT NOT NULL,
    planned     INTEGER NOT NULL,
    invalid     INTEGER NOT NULL,
    filtered    INTEGER NOT NULL,
    valid       INTEGER NOT NULL,
    delivered   INTEGER NOT NULL DEFAULT 0,
    clicked     INTEGER NOT NULL DEFAULT 0
  ) STRICT;
  CREATE INDEX messages_app_created ON messages (app_id, created_at);
  CREATE INDEX messages_created ON messages (created_at);
  CREATE INDEX messages_accepted ON messages (created_at) WHERE state = 'accepted';

  CREATE TABLE receipts (
    message_id   TEXT NOT NULL,
    reg_id       TEXT NOT NULL,
    delivered_at INTEGER NOT NULL,
    clicked_at   INTEGER,
    PRIMARY KEY (message_id, reg_id)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE broker_subscriptions (
    client_id TEXT NOT NULL,
    topic     TEXT NOT NULL,
    qos       INTEGER NOT NULL,
    options   TEXT,
    PRIMARY KEY (client_id, topic)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE broker_packets (
    id         INTEGER PRIMARY KEY,
    meta       TEXT NOT NULL,
    payload    BLOB,
    expires_at INTEGER
  ) STRICT;
  CREATE INDEX broker_packets_expiry ON broker_packets (expires_at) WHERE expires_at IS NOT NULL;

  CREATE TABLE broker_outgoing (
    client_id  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    packet_id  INTEGER NOT NULL,
    message_id INTEGER,
    cmd        TEXT,
    PRIMARY KEY (client_id, seq)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX broker_outgoing_packet ON broker_outgoing (packet_id);

  CREATE TABLE broker_incoming (
    client_id  TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    meta       TEXT NOT NULL,
    payload    BLOB,
    PRIMARY KEY (client_id, message_id)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE broker_retained (
    topic   TEXT PRIMARY KEY,
    meta    TEXT NOT NULL,
    payload BLOB
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE broker_wills (
    client_id TEXT PRIMARY KEY,
    meta      TEXT NOT NULL,
    payload   BLOB
  ) STRICT, WITHOUT ROWID;
  `,
  // 2: the broker reads its queues from memory; these indexes were only written, never read
  `
  DROP INDEX broker_outgoing_packet;
  DROP INDEX broker_packets_expiry;
  `,
  // 3: queue entries keyed by their global sequence alone: a broadcast appends at the end of
  // one B-tree instead of writing into every client's part of it, and acknowledgements of one
  // publish delete neighbouring rows. The broker reads queues from memory, ordered by seq.
  `
  CREATE TABLE broker_outgoing_by_seq (
    seq        INTEGER PRIMARY KEY,
    client_id  TEXT NOT NULL,
    packet_id  INTEGER NOT NULL,
    message_id INTEGER,
    cmd        TEXT
  ) STRICT;
  INSERT INTO broker_outgoing_by_seq (seq, client_id, packet_id, message_id, cmd)
    SELECT seq, client_id, packet_id, message_id, cmd FROM broker_outgoing;
  DROP TABLE broker_outgoing;
  ALTER TABLE broker_outgoing_by_seq RENAME TO broker_outgoing;
  `,
  // 4: two indexes every push wrote and no query read: retention walks the primary key (message
  // ids are minted from the creation time), and nothing lists an app's messages by time yet
  `
  DROP INDEX messages_app_created;
  DROP INDEX messages_created;
  `,
  // 5: recovery pages through accepted messages by (created_at, id), from where it left off
  `
  DROP INDEX messages_accepted;
  CREATE INDEX messages_accepted ON messages (created_at, id) WHERE state = 'accepted';
  `,
  // 6: a packet queued for many clients at once (a broadcast) is one fan-out row — its clients
  // in queue order, their entries numbered from first_seq — instead of a broker_outgoing row
  // per client; entries that left the queue are bits in broker_fanout_done, 8192 to a row
  `
  CREATE TABLE broker_fanouts (
    packet_id INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    clients   TEXT NOT NULL
  ) STRICT;
  CREATE TABLE broker_fanout_done (
    packet_id INTEGER NOT NULL,
    chunk     INTEGER NOT NULL,
    bits      BLOB NOT NULL,
    PRIMARY KEY (packet_id, chunk)
  ) STRICT, WITHOUT ROWID;
  `,
  // 7: a packet queued for one client alone (a push by regId, the commonest) is stored in its
  // queue row — meta, payload and expiry as in broker_packets, which then has no row for it —:
  // one B-tree row written per queued message and one deleted per delivery instead of two each
  `
  ALTER TABLE broker_outgoing ADD COLUMN meta TEXT;
  ALTER TABLE broker_outgoing ADD COLUMN payload BLOB;
  ALTER TABLE broker_outgoing ADD COLUMN expires_at INTEGER;
  `,
  // 8: clients whose session may be behind the core's record of their topics (a membership
  // change began and was not seen to end): reconciled at their connect, and only they. A
  // database from before knows of no unfinished change: every client with a session is marked,
  // reconciled once at its next connect as every connect was until then
  `
  CREATE TABLE broker_unsettled (
    client_id TEXT PRIMARY KEY
  ) STRICT, WITHOUT ROWID;
  INSERT INTO broker_unsettled (client_id) SELECT DISTINCT client_id FROM broker_subscriptions;
  `,
  // 9: receipts keyed by two integers — a number of its own for each message and each device
  // (seq, set at insert counting on from the largest; not the rowid, which VACUUM may
  // renumber) — instead of
  // their two text ids: a receipt, one per delivery, was ~3 µs of SQLite for its two text
  // parameters and its 42-byte key, ~1.5 with integers. The receipts of devices or messages
  // without a row (none are ever deleted but with their messages) cannot be kept
  `
  ALTER TABLE messages ADD COLUMN seq INTEGER;
  UPDATE messages SET seq = rowid;
  CREATE UNIQUE INDEX messages_seq ON messages (seq);
  ALTER TABLE devices ADD COLUMN seq INTEGER;
  UPDATE devices SET seq = rowid;
  CREATE UNIQUE INDEX devices_seq ON devices (seq);
  CREATE TABLE receipts_by_seq (
    message      INTEGER NOT NULL,
    device       INTEGER NOT NULL,
    delivered_at INTEGER NOT NULL,
    clicked_at   INTEGER,
    PRIMARY KEY (message, device)
  ) STRICT, WITHOUT ROWID;
  INSERT INTO receipts_by_seq (message, device, delivered_at, clicked_at)
    SELECT m.seq, d.seq, r.delivered_at, r.clicked_at
    FROM receipts r JOIN messages m ON m.id = r.message_id JOIN devices d ON d.reg_id = r.reg_id;
  DROP TABLE receipts;
  ALTER TABLE receipts_by_seq RENAME TO receipts;
  `,
  // 10: messages keyed by their number (seq, the rowid), and no index of accepted messages.
  // Every push committed a row into four B-trees — the table (by rowid), its id, its seq, and
  // messages_accepted — and took it out of the last at its dispatched mark; now two, the table
  // and its id. Recovery reads the accepted messages from a mark on: every message numbered up
  // to store_marks' 'messages_dispatched_through' is dispatched (durably), deleted, or held
  // (messages_held: accepted and not dispatched for long, listed so that the mark can go on).
  // The accepted messages of the database upgraded are held (found by the old index), and the
  // mark starts at the largest number: the first start reads them, not every message after the
  // oldest of them
  `
  CREATE TABLE messages_by_seq (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    app_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target      TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    state       TEXT NOT NULL,
    planned     INTEGER NOT NULL,
    invalid     INTEGER NOT NULL,
    filtered    INTEGER NOT NULL,
    valid       INTEGER NOT NULL,
    delivered   INTEGER NOT NULL DEFAULT 0,
    clicked     INTEGER NOT NULL DEFAULT 0
  ) STRICT;
  INSERT INTO messages_by_seq (seq, id, app_id, kind, target_type, target, content, created_at,
      expires_at, state, planned, invalid, filtered, valid, delivered, clicked)
    SELECT seq, id, app_id, kind, target_type, target, content, created_at, expires_at, state,
      planned, invalid, filtered, valid, delivered, clicked
    FROM messages ORDER BY seq;
  CREATE TABLE store_marks (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  INSERT INTO store_marks (name, value)
    VALUES ('messages_dispatched_through', coalesce((SELECT max(seq) FROM messages_by_seq), 0));
  CREATE TABLE messages_held (
    seq INTEGER PRIMARY KEY
  ) STRICT;
  INSERT INTO messages_held (seq) SELECT seq FROM messages WHERE state = 'accepted';
  DROP TABLE messages;
  ALTER TABLE messages_by_seq RENAME TO messages;
  `,
]

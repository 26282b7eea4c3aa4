/*
 * The durable command journal on SQLite (see journal.h for the contract).
 *
 * Durability: WAL with synchronous=FULL, so a commit has reached the disk before a command
 * journaled in it is sent. Every write goes through op_begin/op_end: on its own it is one
 * IMMEDIATE transaction (taking the write lock up front, so a concurrent reader can never make
 * it fail half-way on a lock upgrade); inside gp_journal_begin it runs under a savepoint, so a
 * refused or failed call leaves the caller's batch intact.
 *
 * Reads copy rows out in chunks before calling back, so a callback may write to the journal
 * (the daemon moves rows while walking the active ones) or start another walk.
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "path.h"
#include "str.h"

#define SCHEMA_VERSION  1
#define BUSY_TIMEOUT_MS 5000
#define SEQ_BLOCK       64  /* ids reserved per durable write of a sequence's high-water mark */
#define WALK_CHUNK      256 /* rows copied out per query while walking */

static const char *const jstate_names[GP_JS_COUNT] = {
    "queued", "sent", "accepted", "pending", "done", "failed", "timeout", "dry_run", "cancelled",
};

/* Indexed by gp_cmd_kind (1..4). */
static const char *const kind_names[] = {NULL, "setpoint", "dod", "on", "release"};
#define KIND_MAX GP_CMD_RELEASE

/* ---- names ------------------------------------------------------------------------------ */

const char *gp_jstate_name(gp_jstate s)
{
    if ((int)s < 0 || s >= GP_JS_COUNT) return "unknown";
    return jstate_names[s];
}

int gp_jstate_parse(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < GP_JS_COUNT; i++)
        if (strcmp(name, jstate_names[i]) == 0) return i;
    return -1;
}

int gp_jstate_terminal(gp_jstate s)
{
    return s == GP_JS_DONE || s == GP_JS_FAILED || s == GP_JS_TIMEOUT || s == GP_JS_DRY_RUN ||
           s == GP_JS_CANCELLED;
}

const char *gp_cmd_kind_name(gp_cmd_kind k)
{
    if ((int)k < 1 || (int)k > KIND_MAX) return "unknown";
    return kind_names[k];
}

int gp_cmd_kind_parse(const char *name)
{
    if (!name) return -1;
    for (int i = 1; i <= KIND_MAX; i++)
        if (strcmp(name, kind_names[i]) == 0) return i;
    return -1;
}

/* ---- schema and statements -------------------------------------------------------------- */

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE commands("
    " id INTEGER PRIMARY KEY AUTOINCREMENT," /* never reuse an id, even after pruning */
    " device TEXT NOT NULL,"
    " adapter TEXT NOT NULL,"
    " kind TEXT NOT NULL," /* names, validated in C: a CHECK (.. IN ..) made writes 3x slower */
    " value REAL,"
    " soc_target REAL,"
    " duration_s INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL,"
    " vendor_ref TEXT,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " energy_wh REAL,"
    " origin TEXT,"
    " detail TEXT);"
    "CREATE INDEX commands_state ON commands(state, id);"
    "CREATE INDEX commands_device ON commands(device, id);"
    "CREATE TABLE transitions("
    " id INTEGER PRIMARY KEY,"
    " cmd_id INTEGER NOT NULL REFERENCES commands(id) ON DELETE CASCADE,"
    " state TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL,"
    " note TEXT);"
    "CREATE INDEX transitions_cmd ON transitions(cmd_id, id);"
    "CREATE TABLE seq(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE kv(scope TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
    " PRIMARY KEY(scope, key)) WITHOUT ROWID;"
    "INSERT INTO meta(key, value) VALUES('schema_version', '1');";

#define ROW_COLS                                                                                   \
    "id, device, adapter, kind, value, soc_target, duration_s, state, vendor_ref, created_ms,"     \
    " updated_ms, attempts, error, energy_wh, origin, detail"

enum {
    ST_BEGIN_W,
    ST_BEGIN_R,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_ADD,
    ST_TRANS_ADD,
    ST_STATE_OF,
    ST_SET_STATE,
    ST_SET_REF,
    ST_SET_ATTEMPTS,
    ST_SET_RESULT,
    ST_WALK_ALL,
    ST_WALK_STATE,
    ST_WALK_ACTIVE,
    ST_GET,
    ST_HISTORY,
    ST_COUNT,
    ST_SEQ_GET,
    ST_SEQ_PUT,
    ST_KV_PUT,
    ST_KV_DEL,
    ST_KV_GET,
    ST__N
};

static const char *const stmt_sql[ST__N] = {
    [ST_BEGIN_W] = "BEGIN IMMEDIATE",
    [ST_BEGIN_R] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT gp_op",
    [ST_RELEASE] = "RELEASE gp_op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO gp_op",
    [ST_ADD] = "INSERT INTO commands(device, adapter, kind, value, soc_target, duration_s, state,"
               " vendor_ref, created_ms, updated_ms, attempts, error, energy_wh, origin, detail)"
               " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_TRANS_ADD] = "INSERT INTO transitions(cmd_id, state, at_ms, note) VALUES(?,?,?,?)",
    [ST_STATE_OF] = "SELECT state FROM commands WHERE id = ?",
    [ST_SET_STATE] = "UPDATE commands SET state = ?1, updated_ms = ?2,"
                     " error = CASE WHEN ?3 THEN coalesce(?4, error) ELSE error END WHERE id = ?5",
    [ST_SET_REF] = "UPDATE commands SET vendor_ref = ? WHERE id = ?",
    [ST_SET_ATTEMPTS] = "UPDATE commands SET attempts = ? WHERE id = ?",
    [ST_SET_RESULT] = "UPDATE commands SET energy_wh = coalesce(?1, energy_wh),"
                      " detail = coalesce(?2, detail) WHERE id = ?3",
    [ST_WALK_ALL] = "SELECT " ROW_COLS " FROM commands WHERE id > ? ORDER BY id LIMIT ?",
    [ST_WALK_STATE] = "SELECT " ROW_COLS " FROM commands WHERE id > ? AND state = ?3"
                      " ORDER BY id LIMIT ?2",
    [ST_WALK_ACTIVE] = "SELECT " ROW_COLS " FROM commands WHERE id > ? AND state IN"
                       " ('queued','sent','accepted','pending') ORDER BY id LIMIT ?",
    [ST_GET] = "SELECT " ROW_COLS " FROM commands WHERE id = ? LIMIT ?",
    [ST_HISTORY] = "SELECT state, at_ms, note FROM transitions WHERE cmd_id = ? ORDER BY id",
    [ST_COUNT] = "SELECT state, count(*) FROM commands GROUP BY state",
    [ST_SEQ_GET] = "SELECT value FROM seq WHERE name = ?",
    [ST_SEQ_PUT] = "INSERT INTO seq(name, value) VALUES(?1, ?2)"
                   " ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
    [ST_KV_PUT] = "INSERT INTO kv(scope, key, value) VALUES(?,?,?)"
                  " ON CONFLICT(scope, key) DO UPDATE SET value = excluded.value",
    [ST_KV_DEL] = "DELETE FROM kv WHERE scope = ? AND key = ?",
    [ST_KV_GET] = "SELECT value FROM kv WHERE scope = ? AND key = ?",
};

/* One sequence's in-memory block: next..limit may be handed out without touching the disk
 * because limit is (or, while `pending`, will be at the outer commit) the persisted mark. */
typedef struct seq_block {
    char *name; /* owned */
    uint64_t next, limit;
    int pending; /* reserved inside a caller's transaction that has not committed yet */
} seq_block;

struct gp_journal {
    sqlite3 *db;
    char *path; /* owned; "<state_dir>/journal.db" */
    int readonly;
    int depth;     /* gp_journal_begin nesting */
    int broken;    /* SQLite rolled the caller's transaction back under us */
    char err[512]; /* last error, one line */
    char broken_why[512];
    sqlite3_stmt *st[ST__N]; /* prepared on first use, finalized by close */
    seq_block *seqs;         /* owned array */
    size_t nseqs;
    int volatile_; /* gp_journal_set_volatile: no fsync, no transition history */
};

/* ---- errors ----------------------------------------------------------------------------- */

static void set_err(gp_journal *j, const char *fmt, ...) GP_PRINTF(2, 3);

static void set_err(gp_journal *j, const char *fmt, ...)
{
    int n = snprintf(j->err, sizeof j->err, "%s: ", j->path);
    if (n >= 0 && (size_t)n < sizeof j->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->err + n, sizeof j->err - (size_t)n, fmt, ap);
        va_end(ap);
    }
    for (char *p = j->err; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

/* The last error without the leading "<path>: ", to quote it in a later one. */
static const char *err_body(const gp_journal *j)
{
    size_t n = strlen(j->path);
    if (strncmp(j->err, j->path, n) == 0 && j->err[n] == ':' && j->err[n + 1] == ' ')
        return j->err + n + 2;
    return j->err;
}

static void db_err(gp_journal *j)
{
    set_err(j, "%s", sqlite3_errmsg(j->db));
}

/* ---- statements ------------------------------------------------------------------------- */

static sqlite3_stmt *stmt(gp_journal *j, int id)
{
    if (!j->st[id] && sqlite3_prepare_v3(j->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                         &j->st[id], NULL) != SQLITE_OK) {
        db_err(j);
        j->st[id] = NULL;
    }
    return j->st[id];
}

/* Run a statement that returns no rows; leaves it reset. */
static int step_done(gp_journal *j, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) db_err(j);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int run(gp_journal *j, int id)
{
    sqlite3_stmt *s = stmt(j, id);
    return s ? step_done(j, s) : -1;
}

/* Clean-up statements (rollbacks) must not replace the error that caused them. */
static void run_quiet(gp_journal *j, int id)
{
    char keep[sizeof j->err];
    memcpy(keep, j->err, sizeof keep);
    run(j, id);
    memcpy(j->err, keep, sizeof keep);
}

static void bind_real(sqlite3_stmt *s, int i, double v)
{
    if (isnan(v))
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_double(s, i, v);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static double col_real(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s, i);
}

/* ---- sequences: bookkeeping around transactions ------------------------------------------ */

static void seq_committed(gp_journal *j)
{
    for (size_t i = 0; i < j->nseqs; i++)
        j->seqs[i].pending = 0;
}

static int seq_put(gp_journal *j, const char *name, uint64_t mark)
{
    sqlite3_stmt *s = stmt(j, ST_SEQ_PUT);
    if (!s) return -1;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)mark);
    return step_done(j, s);
}

/* The caller's transaction rolled back, taking reservations with it, but ids from those blocks
 * may already be in use: persist the marks again on their own, and if even that fails, force a
 * fresh reservation (above the in-memory limit) before the next id is handed out. */
static void seq_rolled_back(gp_journal *j)
{
    for (size_t i = 0; i < j->nseqs; i++) {
        seq_block *b = &j->seqs[i];
        if (!b->pending) continue;
        b->pending = 0;
        char keep[sizeof j->err];
        memcpy(keep, j->err, sizeof keep);
        if (run(j, ST_BEGIN_W) == 0) {
            if (seq_put(j, b->name, b->limit) == 0 && run(j, ST_COMMIT) == 0) {
                memcpy(j->err, keep, sizeof keep);
                continue;
            }
            run_quiet(j, ST_ROLLBACK);
        }
        gp_warn("journal", "%s", j->err);
        memcpy(j->err, keep, sizeof keep);
        b->next = b->limit + 1;
    }
}

/* ---- write transactions ------------------------------------------------------------------ */

static int op_begin(gp_journal *j)
{
    if (j->readonly) {
        set_err(j, "journal opened read-only");
        return -1;
    }
    if (j->broken) {
        set_err(j, "transaction already rolled back after: %s", j->broken_why);
        return -1;
    }
    return run(j, j->depth ? ST_SAVEPOINT : ST_BEGIN_W);
}

/* Finish what op_begin started: commit (or release) when rc == 0, undo otherwise. Returns 0
 * only when the write is in (or, inside a batch, will go in with) the outer transaction. */
static int op_end(gp_journal *j, int rc)
{
    if (j->depth == 0) {
        if (rc == 0 && run(j, ST_COMMIT) == 0) {
            seq_committed(j);
            return 0;
        }
        if (!sqlite3_get_autocommit(j->db)) run_quiet(j, ST_ROLLBACK);
        seq_rolled_back(j);
        return -1;
    }
    if (rc == 0 && run(j, ST_RELEASE) == 0) return 0;
    if (sqlite3_get_autocommit(j->db)) {
        /* An I/O error or similar made SQLite abandon the whole batch: every later write in it
         * is refused and the outer commit reports the failure. */
        j->broken = 1;
        snprintf(j->broken_why, sizeof j->broken_why, "%s", err_body(j));
    } else {
        run_quiet(j, ST_ROLLBACK_TO);
        run_quiet(j, ST_RELEASE);
    }
    return -1;
}

int gp_journal_begin(gp_journal *j)
{
    if (!j) return -1;
    j->err[0] = '\0';
    if (j->depth == 0 && run(j, j->readonly ? ST_BEGIN_R : ST_BEGIN_W) != 0) return -1;
    j->depth++;
    return 0;
}

int gp_journal_commit(gp_journal *j)
{
    if (!j) return -1;
    j->err[0] = '\0';
    if (j->depth == 0) {
        set_err(j, "commit without begin");
        return -1;
    }
    if (--j->depth > 0) {
        if (!j->broken) return 0;
        set_err(j, "transaction rolled back after: %s", j->broken_why);
        return -1;
    }
    if (j->broken) {
        j->broken = 0;
        set_err(j, "transaction rolled back after: %s", j->broken_why);
    } else if (run(j, ST_COMMIT) == 0) {
        seq_committed(j);
        return 0;
    }
    if (!sqlite3_get_autocommit(j->db)) run_quiet(j, ST_ROLLBACK);
    seq_rolled_back(j);
    return -1;
}

/* ---- open / close ----------------------------------------------------------------------- */

/* One-row, one-column query used while opening; returns the integer, or -1 with err set. */
static int64_t query_int(gp_journal *j, const char *sql)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(j->db, sql, -1, &s, NULL) != SQLITE_OK) {
        db_err(j);
        return -1;
    }
    int64_t v = -1;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        v = 0;
    else
        db_err(j);
    sqlite3_finalize(s);
    return v;
}

static int set_wal(gp_journal *j)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(j->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK) {
        db_err(j);
        return -1;
    }
    int rc = -1;
    if (sqlite3_step(s) != SQLITE_ROW)
        db_err(j);
    else if (sqlite3_stricmp((const char *)sqlite3_column_text(s, 0), "wal") != 0)
        set_err(j, "cannot use WAL mode (journal_mode is %s)", sqlite3_column_text(s, 0));
    else
        rc = 0;
    sqlite3_finalize(s);
    return rc;
}

/* Check the schema version, creating the schema in an empty (new) file unless readonly. */
static int check_schema(gp_journal *j)
{
    int64_t tables = query_int(j, "SELECT count(*) FROM sqlite_master WHERE type = 'table'");
    if (tables < 0) return -1;
    int64_t has_meta =
        query_int(j, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
    if (has_meta < 0) return -1;
    if (tables == 0) {
        if (j->readonly) {
            set_err(j, "no journal yet (empty database)");
            return -1;
        }
        if (sqlite3_exec(j->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
            db_err(j);
            return -1;
        }
        return 0;
    }
    int64_t version = has_meta ? query_int(j, "SELECT CAST(value AS INTEGER) FROM meta"
                                              " WHERE key = 'schema_version'")
                               : 0;
    if (version < 0) return -1;
    if (version == 0) {
        set_err(j, "not a gridpilot journal (no schema version)");
        return -1;
    }
    if (version > SCHEMA_VERSION) {
        set_err(j,
                "journal schema version %" PRId64 " is newer than this gridpilot supports (%d);"
                " use a newer gridpilot",
                version, SCHEMA_VERSION);
        return -1;
    }
    return 0;
}

static int setup(gp_journal *j)
{
    sqlite3_busy_timeout(j->db, BUSY_TIMEOUT_MS);
    if (j->readonly) {
        if (sqlite3_exec(j->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL) != SQLITE_OK) {
            db_err(j);
            return -1;
        }
        if (check_schema(j) == 0) return 0;
        int rc = sqlite3_errcode(j->db);
        if (rc == SQLITE_READONLY || rc == SQLITE_CANTOPEN) {
            /* Reading a WAL journal needs its -shm file, which a reader that may not write in
             * state_dir cannot create; any read-write open (the daemon) leaves one behind. */
            char why[sizeof j->err];
            snprintf(why, sizeof why, "%s", err_body(j));
            set_err(j, "%s (cannot create journal.db-shm; run gridpilot once to create it)", why);
        }
        return -1;
    }
    if (set_wal(j) != 0) return -1;
    /* Keep -wal and -shm after the last close: a reader that may not write in state_dir
     * (`gridpilot tasks` as another user in the group) can only open a WAL journal whose
     * -shm already exists. */
    int persist = 1;
    sqlite3_file_control(j->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    /* FULL: a commit is on disk before the commands journaled in it are sent. The size limit
     * truncates the WAL after a checkpoint instead of keeping its largest size forever. */
    /* A 32 MiB page cache: a 10,000-device tick touches tens of thousands of pages, and the
     * default 2 MiB cache turns that into as many preads. */
    static const char pragmas[] = "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                  "PRAGMA journal_size_limit=67108864; PRAGMA cache_size=-32768";
    if (sqlite3_exec(j->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        db_err(j);
        return -1;
    }
    /* Version check and creation in one write transaction, so two processes opening a new
     * journal at once cannot both create the schema. */
    if (run(j, ST_BEGIN_W) != 0) return -1;
    if (check_schema(j) != 0) {
        run_quiet(j, ST_ROLLBACK);
        return -1;
    }
    return run(j, ST_COMMIT);
}

static char *journal_path(const char *state_dir)
{
    size_t n = strlen(state_dir);
    while (n > 1 && state_dir[n - 1] == '/')
        n--;
    gp_str s = {0};
    gp_str_append(&s, state_dir, n);
    if (s.data[s.len - 1] != '/') gp_str_puts(&s, "/");
    gp_str_puts(&s, "journal.db");
    return s.data;
}

gp_journal *gp_journal_open(const char *state_dir, int readonly, char *err, size_t errlen)
{
    if (!state_dir || !*state_dir) {
        if (err && errlen) snprintf(err, errlen, "journal: no state_dir given");
        return NULL;
    }
    gp_journal *j = gp_xcalloc(1, sizeof *j);
    j->path = journal_path(state_dir);
    j->readonly = readonly ? 1 : 0;
    int flags = SQLITE_OPEN_NOMUTEX;
    struct stat st;
    if (readonly) {
        if (stat(j->path, &st) != 0) {
            set_err(j, "%s", errno == ENOENT ? "no journal yet" : strerror(errno));
            goto fail;
        }
        flags |= SQLITE_OPEN_READONLY;
    } else {
        if (gp_path_mkdirs(state_dir, 0750) != 0) {
            snprintf(j->err, sizeof j->err, "%s: cannot create state directory: %s", state_dir,
                     strerror(errno));
            goto fail;
        }
        /* Created here rather than by SQLite so that it (and, after it, the -wal and -shm
         * files, which copy its mode) is not world-readable: adapters keep state in kv. */
        int fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            set_err(j, "%s", strerror(errno));
            goto fail;
        }
        close(fd);
        flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    }
    if (sqlite3_open_v2(j->path, &j->db, flags, NULL) != SQLITE_OK) {
        if (j->db)
            db_err(j);
        else
            set_err(j, "out of memory opening the database");
        goto fail;
    }
    if (setup(j) != 0) goto fail;
    return j;
fail:
    if (err && errlen) snprintf(err, errlen, "%s", j->err);
    gp_journal_close(j);
    return NULL;
}

void gp_journal_close(gp_journal *j)
{
    if (!j) return;
    if (j->depth > 0 && j->db) {
        gp_warn("journal", "%s: closed inside a transaction; its writes are discarded", j->path);
        j->depth = 0;
        j->broken = 0;
        if (!sqlite3_get_autocommit(j->db)) run_quiet(j, ST_ROLLBACK);
        seq_rolled_back(j);
    }
    for (int i = 0; i < ST__N; i++)
        sqlite3_finalize(j->st[i]);
    sqlite3_close(j->db);
    for (size_t i = 0; i < j->nseqs; i++)
        free(j->seqs[i].name);
    free(j->seqs);
    free(j->path);
    free(j);
}

const char *gp_journal_path(const gp_journal *j)
{
    return j ? j->path : NULL;
}

const char *gp_journal_error(const gp_journal *j)
{
    return j ? j->err : "journal: not open";
}

/* ---- writes ----------------------------------------------------------------------------- */

static int add_transition(gp_journal *j, uint64_t id, gp_jstate state, int64_t at_ms,
                          const char *note)
{
    if (j->volatile_) return 0; /* a simulation's history: rows keep state, time, error */
    sqlite3_stmt *s = stmt(j, ST_TRANS_ADD);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    sqlite3_bind_text(s, 2, jstate_names[state], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, at_ms);
    bind_text(s, 4, note);
    return step_done(j, s);
}

static int insert_row(gp_journal *j, const gp_jrow *r, int64_t now_ms, uint64_t *id)
{
    sqlite3_stmt *s = stmt(j, ST_ADD);
    if (!s) return -1;
    sqlite3_bind_text(s, 1, r->device, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->adapter, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, kind_names[r->kind], -1, SQLITE_STATIC);
    bind_real(s, 4, r->value);
    bind_real(s, 5, r->soc_target);
    sqlite3_bind_int64(s, 6, r->duration_s);
    sqlite3_bind_text(s, 7, jstate_names[r->state], -1, SQLITE_STATIC);
    bind_text(s, 8, r->vendor_ref);
    sqlite3_bind_int64(s, 9, now_ms);
    sqlite3_bind_int64(s, 10, now_ms);
    sqlite3_bind_int64(s, 11, r->attempts);
    bind_text(s, 12, r->error);
    bind_real(s, 13, r->energy_wh);
    bind_text(s, 14, r->origin);
    bind_text(s, 15, r->detail);
    if (step_done(j, s) != 0) return -1;
    *id = (uint64_t)sqlite3_last_insert_rowid(j->db);
    return 0;
}

uint64_t gp_journal_add(gp_journal *j, const gp_jrow *row, int64_t now_ms)
{
    if (!j) return 0;
    j->err[0] = '\0';
    if (!row || !row->device || !row->adapter) {
        set_err(j, "add: command without device or adapter");
        return 0;
    }
    if ((int)row->kind < 1 || (int)row->kind > KIND_MAX) {
        set_err(j, "add: unknown command kind %d", (int)row->kind);
        return 0;
    }
    if ((int)row->state < 0 || row->state >= GP_JS_COUNT) {
        set_err(j, "add: unknown state %d", (int)row->state);
        return 0;
    }
    if (op_begin(j) != 0) return 0;
    uint64_t id = 0;
    int rc = insert_row(j, row, now_ms, &id);
    if (rc == 0) rc = add_transition(j, id, row->state, now_ms, NULL);
    return op_end(j, rc) == 0 ? id : 0;
}

/* The current state of command id: 0 with *state set, or -1 with err set. */
static int state_of(gp_journal *j, uint64_t id, gp_jstate *state)
{
    sqlite3_stmt *s = stmt(j, ST_STATE_OF);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(s), ret = -1;
    if (rc == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        int st = gp_jstate_parse(name);
        if (st < 0)
            set_err(j, "command %" PRIu64 " has unknown state '%s'", id, name ? name : "");
        else {
            *state = (gp_jstate)st;
            ret = 0;
        }
    } else if (rc == SQLITE_DONE)
        set_err(j, "no command %" PRIu64, id);
    else
        db_err(j);
    sqlite3_reset(s);
    return ret;
}

static int set_state(gp_journal *j, uint64_t id, gp_jstate to, int64_t now_ms, const char *note)
{
    sqlite3_stmt *s = stmt(j, ST_SET_STATE);
    if (!s) return -1;
    sqlite3_bind_text(s, 1, jstate_names[to], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now_ms);
    /* The note is the row's error when it says what went wrong: a final failure, or the
     * reason a command went back to the queue for a retry. */
    sqlite3_bind_int(s, 3,
                     to == GP_JS_FAILED || to == GP_JS_TIMEOUT || to == GP_JS_CANCELLED ||
                         to == GP_JS_QUEUED);
    bind_text(s, 4, note);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)id);
    return step_done(j, s);
}

int gp_journal_transition(gp_journal *j, uint64_t id, gp_jstate to, int64_t now_ms,
                          const char *note)
{
    if (!j) return -1;
    j->err[0] = '\0';
    if ((int)to < 0 || to >= GP_JS_COUNT) {
        set_err(j, "command %" PRIu64 ": unknown state %d", id, (int)to);
        return -1;
    }
    if (op_begin(j) != 0) return -1;
    gp_jstate from;
    int rc = state_of(j, id, &from);
    if (rc == 0 && gp_jstate_terminal(from)) {
        set_err(j, "command %" PRIu64 " is already %s; refusing to move it to %s", id,
                jstate_names[from], jstate_names[to]);
        rc = -1;
    }
    if (rc == 0) rc = set_state(j, id, to, now_ms, note);
    if (rc == 0) rc = add_transition(j, id, to, now_ms, note);
    return op_end(j, rc);
}

/* Run an UPDATE of one command bound by the caller (id is the last parameter). */
static int update_one(gp_journal *j, sqlite3_stmt *s, uint64_t id)
{
    int rc = step_done(j, s);
    if (rc == 0 && sqlite3_changes(j->db) == 0) {
        set_err(j, "no command %" PRIu64, id);
        rc = -1;
    }
    return op_end(j, rc);
}

int gp_journal_set_vendor_ref(gp_journal *j, uint64_t id, const char *vendor_ref)
{
    if (!j) return -1;
    j->err[0] = '\0';
    if (op_begin(j) != 0) return -1;
    sqlite3_stmt *s = stmt(j, ST_SET_REF);
    if (!s) return op_end(j, -1);
    bind_text(s, 1, vendor_ref);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)id);
    return update_one(j, s, id);
}

int gp_journal_set_attempts(gp_journal *j, uint64_t id, uint32_t attempts)
{
    if (!j) return -1;
    j->err[0] = '\0';
    if (op_begin(j) != 0) return -1;
    sqlite3_stmt *s = stmt(j, ST_SET_ATTEMPTS);
    if (!s) return op_end(j, -1);
    sqlite3_bind_int64(s, 1, attempts);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)id);
    return update_one(j, s, id);
}

int gp_journal_set_result(gp_journal *j, uint64_t id, double energy_wh, const char *detail)
{
    if (!j) return -1;
    j->err[0] = '\0';
    if (op_begin(j) != 0) return -1;
    sqlite3_stmt *s = stmt(j, ST_SET_RESULT);
    if (!s) return op_end(j, -1);
    bind_real(s, 1, energy_wh);
    bind_text(s, 2, detail);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)id);
    return update_one(j, s, id);
}

/* ---- reads ------------------------------------------------------------------------------ */

/* Rows copied out of a statement: strings live in `text`, referenced by offset + 1 (0 = NULL)
 * until every row is in, because the arena moves while it grows. */
enum { F_DEVICE, F_ADAPTER, F_VENDOR_REF, F_ERROR, F_ORIGIN, F_DETAIL, F__N };

typedef struct rowbuf {
    gp_jrow *rows; /* owned */
    size_t (*off)[F__N];
    size_t n, cap;
    gp_str text;
} rowbuf;

static size_t keep_text(rowbuf *b, sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL) return 0;
    const char *t = (const char *)sqlite3_column_text(s, col);
    size_t at = b->text.len + 1;
    gp_str_append(&b->text, t ? t : "", (size_t)sqlite3_column_bytes(s, col));
    gp_str_append(&b->text, "", 1);
    return at;
}

static int copy_row(gp_journal *j, rowbuf *b, sqlite3_stmt *s)
{
    gp_jrow *r = &b->rows[b->n];
    size_t *off = b->off[b->n];
    memset(r, 0, sizeof *r);
    r->id = (uint64_t)sqlite3_column_int64(s, 0);
    off[F_DEVICE] = keep_text(b, s, 1);
    off[F_ADAPTER] = keep_text(b, s, 2);
    int kind = gp_cmd_kind_parse((const char *)sqlite3_column_text(s, 3));
    int state = gp_jstate_parse((const char *)sqlite3_column_text(s, 7));
    if (kind < 0 || state < 0) {
        set_err(j, "command %" PRIu64 " has an unknown kind or state", r->id);
        return -1;
    }
    r->kind = (gp_cmd_kind)kind;
    r->value = col_real(s, 4);
    r->soc_target = col_real(s, 5);
    r->duration_s = (uint32_t)sqlite3_column_int64(s, 6);
    r->state = (gp_jstate)state;
    off[F_VENDOR_REF] = keep_text(b, s, 8);
    r->created_ms = sqlite3_column_int64(s, 9);
    r->updated_ms = sqlite3_column_int64(s, 10);
    r->attempts = (uint32_t)sqlite3_column_int64(s, 11);
    off[F_ERROR] = keep_text(b, s, 12);
    r->energy_wh = col_real(s, 13);
    off[F_ORIGIN] = keep_text(b, s, 14);
    off[F_DETAIL] = keep_text(b, s, 15);
    b->n++;
    return 0;
}

static const char *text_at(const rowbuf *b, size_t off)
{
    return off ? b->text.data + off - 1 : NULL;
}

/* Step s to the end, copying up to b->cap rows; resets s. Returns 0 or -1 with err set. */
static int fill(gp_journal *j, rowbuf *b, sqlite3_stmt *s)
{
    b->n = 0;
    gp_str_reset(&b->text);
    int rc = SQLITE_DONE, ret = 0;
    while (b->n < b->cap && (rc = sqlite3_step(s)) == SQLITE_ROW)
        if (copy_row(j, b, s) != 0) {
            ret = -1;
            break;
        }
    if (ret == 0 && b->n < b->cap && rc != SQLITE_DONE) {
        db_err(j);
        ret = -1;
    }
    sqlite3_reset(s);
    for (size_t i = 0; ret == 0 && i < b->n; i++) {
        gp_jrow *r = &b->rows[i];
        r->device = text_at(b, b->off[i][F_DEVICE]);
        r->adapter = text_at(b, b->off[i][F_ADAPTER]);
        r->vendor_ref = text_at(b, b->off[i][F_VENDOR_REF]);
        r->error = text_at(b, b->off[i][F_ERROR]);
        r->origin = text_at(b, b->off[i][F_ORIGIN]);
        r->detail = text_at(b, b->off[i][F_DETAIL]);
    }
    return ret;
}

static void rowbuf_init(rowbuf *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->rows = gp_xcalloc(cap, sizeof *b->rows);
    b->off = gp_xcalloc(cap, sizeof *b->off);
}

static void rowbuf_free(rowbuf *b)
{
    free(b->rows);
    free(b->off);
    gp_str_clear(&b->text);
}

/* Walk rows in id order, WALK_CHUNK at a time (keyset paging on id). */
static int walk(gp_journal *j, int which, int state, gp_jrow_cb cb, void *ud)
{
    rowbuf b;
    rowbuf_init(&b, WALK_CHUNK);
    uint64_t after = 0;
    int visited = 0, stop = 0;
    while (!stop) {
        sqlite3_stmt *s = stmt(j, which);
        if (!s) {
            visited = -1;
            break;
        }
        sqlite3_bind_int64(s, 1, (sqlite3_int64)after);
        sqlite3_bind_int(s, 2, WALK_CHUNK);
        if (which == ST_WALK_STATE) sqlite3_bind_text(s, 3, jstate_names[state], -1, SQLITE_STATIC);
        if (fill(j, &b, s) != 0) {
            visited = -1;
            break;
        }
        for (size_t i = 0; i < b.n && !stop; i++) {
            visited++;
            if (cb && cb(ud, &b.rows[i]) != 0) stop = 1;
        }
        if (b.n < WALK_CHUNK) break;
        after = b.rows[b.n - 1].id;
    }
    rowbuf_free(&b);
    return visited;
}

int gp_journal_each(gp_journal *j, int state, gp_jrow_cb cb, void *ud)
{
    if (!j) return -1;
    j->err[0] = '\0';
    if (state >= GP_JS_COUNT) {
        set_err(j, "unknown state %d", state);
        return -1;
    }
    return walk(j, state < 0 ? ST_WALK_ALL : ST_WALK_STATE, state, cb, ud);
}

int gp_journal_each_active(gp_journal *j, gp_jrow_cb cb, void *ud)
{
    if (!j) return -1;
    j->err[0] = '\0';
    return walk(j, ST_WALK_ACTIVE, -1, cb, ud);
}

int gp_journal_get(gp_journal *j, uint64_t id, gp_jrow_cb cb, void *ud)
{
    if (!j) return -1;
    j->err[0] = '\0';
    sqlite3_stmt *s = stmt(j, ST_GET);
    if (!s) return -1;
    rowbuf b;
    rowbuf_init(&b, 1);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    sqlite3_bind_int(s, 2, 1);
    int ret = fill(j, &b, s);
    if (ret == 0 && b.n == 1) {
        ret = 1;
        if (cb) cb(ud, &b.rows[0]);
    }
    rowbuf_free(&b);
    return ret;
}

typedef struct trans {
    gp_jstate state;
    int64_t at_ms;
    size_t note; /* offset + 1 into the text arena, 0 = NULL */
} trans;

int gp_journal_history(gp_journal *j, uint64_t id, gp_jtrans_cb cb, void *ud)
{
    if (!j) return -1;
    j->err[0] = '\0';
    sqlite3_stmt *s = stmt(j, ST_HISTORY);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    trans *t = NULL;
    size_t n = 0, cap = 0;
    gp_str text = {0};
    int rc, ret = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int st = gp_jstate_parse((const char *)sqlite3_column_text(s, 0));
        if (st < 0) {
            set_err(j, "command %" PRIu64 " has a transition to an unknown state", id);
            ret = -1;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            t = gp_xrealloc(t, cap * sizeof *t);
        }
        t[n].state = (gp_jstate)st;
        t[n].at_ms = sqlite3_column_int64(s, 1);
        t[n].note = 0;
        if (sqlite3_column_type(s, 2) != SQLITE_NULL) {
            t[n].note = text.len + 1;
            gp_str_append(&text, (const char *)sqlite3_column_text(s, 2),
                          (size_t)sqlite3_column_bytes(s, 2));
            gp_str_append(&text, "", 1);
        }
        n++;
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        db_err(j);
        ret = -1;
    }
    sqlite3_reset(s);
    for (size_t i = 0; ret >= 0 && i < n; i++) {
        const char *note = t[i].note ? text.data + t[i].note - 1 : NULL;
        ret++;
        if (cb && cb(ud, t[i].state, t[i].at_ms, note) != 0) break;
    }
    free(t);
    gp_str_clear(&text);
    return ret;
}

int gp_journal_count(gp_journal *j, uint64_t counts[GP_JS_COUNT])
{
    if (!j) return -1;
    j->err[0] = '\0';
    for (int i = 0; i < GP_JS_COUNT; i++)
        counts[i] = 0;
    sqlite3_stmt *s = stmt(j, ST_COUNT);
    if (!s) return -1;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int st = gp_jstate_parse((const char *)sqlite3_column_text(s, 0));
        if (st >= 0) counts[st] = (uint64_t)sqlite3_column_int64(s, 1);
    }
    if (rc != SQLITE_DONE) db_err(j);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int gp_journal_prune(gp_journal *j, int64_t before_ms)
{
    sqlite3_stmt *s = NULL;
    static const char sql[] =
        "DELETE FROM commands WHERE state IN ('done','failed','timeout','dry_run','cancelled') "
        "AND updated_ms < ?";
    int rc = sqlite3_prepare_v2(j->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, before_ms);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        db_err(j);
        return -1;
    }
    return sqlite3_changes(j->db);
}

/* ---- sequences -------------------------------------------------------------------------- */

static seq_block *seq_find(gp_journal *j, const char *name)
{
    for (size_t i = 0; i < j->nseqs; i++)
        if (strcmp(j->seqs[i].name, name) == 0) return &j->seqs[i];
    j->seqs = gp_xrealloc(j->seqs, (j->nseqs + 1) * sizeof *j->seqs);
    seq_block *b = &j->seqs[j->nseqs++];
    b->name = gp_xstrdup(name);
    b->next = 1;
    b->limit = 0; /* nothing reserved yet */
    b->pending = 0;
    return b;
}

/* Persist a new high-water mark SEQ_BLOCK above both the stored one and anything handed out
 * here, then serve the ids in between from memory. */
static int seq_reserve(gp_journal *j, seq_block *b)
{
    if (op_begin(j) != 0) return -1;
    sqlite3_stmt *s = stmt(j, ST_SEQ_GET);
    if (!s) return op_end(j, -1);
    sqlite3_bind_text(s, 1, b->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    uint64_t stored = 0;
    if (rc == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(s, 0);
        stored = v > 0 ? (uint64_t)v : 0;
    } else if (rc != SQLITE_DONE)
        db_err(j);
    sqlite3_reset(s);
    uint64_t base = stored > b->limit ? stored : b->limit;
    if ((rc == SQLITE_ROW || rc == SQLITE_DONE) && base > (uint64_t)INT64_MAX - SEQ_BLOCK) {
        set_err(j, "sequence %s is exhausted", b->name);
        rc = SQLITE_ERROR;
    }
    int ok = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? seq_put(j, b->name, base + SEQ_BLOCK) : -1;
    int in_batch = j->depth > 0;
    if (op_end(j, ok) != 0) return -1;
    b->next = base + 1;
    b->limit = base + SEQ_BLOCK;
    b->pending = in_batch;
    return 0;
}

uint64_t gp_journal_seq_next(gp_journal *j, const char *name)
{
    if (!j) return 0;
    j->err[0] = '\0';
    if (!name || !*name) {
        set_err(j, "sequence without a name");
        return 0;
    }
    seq_block *b = seq_find(j, name);
    if (b->next > b->limit && seq_reserve(j, b) != 0) return 0;
    return b->next++;
}

void gp_journal_seq_floor(gp_journal *j, const char *name, uint64_t floor)
{
    if (!j || !name || !*name || floor >= (uint64_t)INT64_MAX - SEQ_BLOCK) return;
    seq_block *b = seq_find(j, name);
    if (b->next > floor) return;
    /* Past the block's end the next call reserves anew, from max(stored mark, floor). */
    if (b->limit < floor) b->limit = floor;
    b->next = floor + 1;
}

/* ---- adapter key-value state ------------------------------------------------------------ */

int gp_journal_kv_set(gp_journal *j, const char *scope, const char *key, const void *val,
                      size_t len)
{
    if (!j) return -1;
    j->err[0] = '\0';
    if (!scope || !key) {
        set_err(j, "kv: missing scope or key");
        return -1;
    }
    if (len > INT32_MAX) {
        set_err(j, "kv %s/%s: value too large (%zu bytes)", scope, key, len);
        return -1;
    }
    if (op_begin(j) != 0) return -1;
    sqlite3_stmt *s = stmt(j, val ? ST_KV_PUT : ST_KV_DEL);
    if (!s) return op_end(j, -1);
    sqlite3_bind_text(s, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    /* A zero-length blob, not NULL: "" is a value, distinct from a deleted key. */
    if (val) sqlite3_bind_blob(s, 3, len ? val : "", (int)len, SQLITE_STATIC);
    return op_end(j, step_done(j, s));
}

void *gp_journal_kv_get(gp_journal *j, const char *scope, const char *key, size_t *len)
{
    if (len) *len = 0;
    if (!j) return NULL;
    j->err[0] = '\0';
    if (!scope || !key) {
        set_err(j, "kv: missing scope or key");
        return NULL;
    }
    sqlite3_stmt *s = stmt(j, ST_KV_GET);
    if (!s) return NULL;
    sqlite3_bind_text(s, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    char *out = NULL;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(s, 0);
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        out = gp_xmalloc(n + 1);
        if (n) memcpy(out, p, n);
        out[n] = '\0';
        if (len) *len = n;
    } else if (rc != SQLITE_DONE)
        db_err(j);
    sqlite3_reset(s);
    return out;
}

int gp_journal_set_volatile(gp_journal *j)
{
    j->volatile_ = 1;
    return sqlite3_exec(j->db, "PRAGMA synchronous=OFF", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

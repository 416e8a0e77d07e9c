/*
 * pg.h: PostgreSQL connections and schema migrations.
 */
#ifndef HUB_PG_H
#define HUB_PG_H

#include <libpq-fe.h>

/*
 * hub_pg_connect: connects with conninfo, retrying with capped exponential
 * back-off (100 ms doubling to 5 s) for up to max_wait_ms (0: one attempt).
 * A password may come from password (NULL to use conninfo/PGPASSFILE alone).
 * Returns a connection or NULL (reason in errstr, password never included).
 * Gives up early if a stop is requested.
 */
PGconn *hub_pg_connect(const char *conninfo, const char *password, int max_wait_ms, char *errstr,
                       size_t errstr_size);

/*
 * hub_pg_exec: runs a parameterless statement, expecting no rows. 0 or HUB_EPG
 * (message in errstr). The result is always cleared.
 */
int hub_pg_exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size);

/*
 * hub_pg_migrate: applies, in file-name order, every `NNNN_name.sql` file in
 * dir not yet recorded in hub_schema_migrations, each in its own transaction
 * together with its record, under an advisory lock so concurrent starters do
 * not race. A file that changed after it was applied is an error (its SHA-256
 * is recorded). *applied (may be NULL) gets the number applied now.
 * Returns 0, HUB_EIO or HUB_EPG.
 */
int hub_pg_migrate(PGconn *conn, const char *dir, int *applied, char *errstr, size_t errstr_size);

/* hub_pg_is_connection_error: non-zero if conn is broken (worth reconnecting). */
int hub_pg_is_connection_error(PGconn *conn);

#endif

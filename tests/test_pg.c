/* test_pg.c: a round trip through the real PostgreSQL server, and migrations applied once. */
#include "hub/common.h"
#include "hub/pg.h"
#include "test.h"

static void test_round_trip(void)
{
    char conninfo[1024], errstr[512] = "";
    hub_test_pg_db("pg", conninfo, sizeof(conninfo));
    PGconn *conn = hub_pg_connect(conninfo, NULL, 5000, errstr, sizeof(errstr));
    ASSERT_TRUE(conn != NULL);
    const char *params[1] = {"LEICESTER"};
    PGresult *res =
        PQexecParams(conn, "SELECT $1::text || '-' || 17", 1, NULL, params, NULL, NULL, 0);
    ASSERT_INT_EQ(PQresultStatus(res), PGRES_TUPLES_OK);
    ASSERT_STR_EQ(PQgetvalue(res, 0, 0), "LEICESTER-17");
    PQclear(res);
    PQfinish(conn);
}

static long long count(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ASSERT_INT_EQ(PQresultStatus(res), PGRES_TUPLES_OK);
    long long n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

static void test_migrations_once(void)
{
    char conninfo[1024], errstr[512] = "";
    const char *dir = hub_test_tmpdir();
    int applied = -1;

    hub_test_write_file(dir, "0001_people.sql",
                        "CREATE TABLE people (k text PRIMARY KEY);\n"
                        "INSERT INTO people VALUES ('a');\n");
    hub_test_write_file(dir, "0002_more.sql", "INSERT INTO people VALUES ('b');\n");
    hub_test_write_file(dir, "README.txt", "not a migration");
    hub_test_pg_db("mig", conninfo, sizeof(conninfo));
    PGconn *conn = hub_pg_connect(conninfo, NULL, 5000, errstr, sizeof(errstr));
    ASSERT_TRUE(conn != NULL);

    ASSERT_OK(hub_pg_migrate(conn, dir, &applied, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(applied, 2);
    ASSERT_OK(hub_pg_migrate(conn, dir, &applied, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(applied, 0);
    ASSERT_INT_EQ(count(conn, "SELECT count(*) FROM people"), 2);
    ASSERT_INT_EQ(count(conn, "SELECT count(*) FROM hub_schema_migrations"), 2);

    /* A new file is applied alone. */
    hub_test_write_file(dir, "0003_third.sql", "INSERT INTO people VALUES ('c');\n");
    ASSERT_OK(hub_pg_migrate(conn, dir, &applied, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(applied, 1);

    /* Editing an applied migration is refused, and nothing is changed. */
    hub_test_write_file(dir, "0002_more.sql", "INSERT INTO people VALUES ('z');\n");
    ASSERT_INT_EQ(hub_pg_migrate(conn, dir, &applied, errstr, sizeof(errstr)), HUB_EPG);
    ASSERT_STR_CONTAINS(errstr, "0002_more.sql: changed after it was applied");
    ASSERT_INT_EQ(count(conn, "SELECT count(*) FROM people"), 3);

    /* A failing migration rolls back entirely and is not recorded. */
    const char *dir2 = hub_test_tmpdir();
    hub_test_write_file(dir2, "0001_bad.sql",
                        "CREATE TABLE half (x int);\nINSERT INTO nowhere VALUES (1);\n");
    ASSERT_INT_EQ(hub_pg_migrate(conn, dir2, &applied, errstr, sizeof(errstr)), HUB_EPG);
    ASSERT_STR_CONTAINS(errstr, "0001_bad.sql");
    ASSERT_STR_CONTAINS(errstr, "nowhere");
    ASSERT_INT_EQ(count(conn, "SELECT count(*) FROM pg_tables WHERE tablename = 'half'"), 0);
    PQfinish(conn);
}

static void test_connect_failure_is_clear(void)
{
    char errstr[512] = "";
    /* Port 1 on loopback: nothing listens; two attempts within 300 ms, then a clear error. */
    PGconn *conn = hub_pg_connect("host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1",
                                  "secret-never-shown", 300, errstr, sizeof(errstr));
    ASSERT_TRUE(conn == NULL);
    ASSERT_STR_CONTAINS(errstr, "cannot connect to PostgreSQL");
    ASSERT_TRUE(strstr(errstr, "secret-never-shown") == NULL);
}

int main(void)
{
    RUN_TEST(test_round_trip);
    RUN_TEST(test_migrations_once);
    RUN_TEST(test_connect_failure_is_clear);
    return 0;
}

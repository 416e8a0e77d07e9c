/* test_config.c: the table-driven config loader: values, defaults, and every class of error. */
#include <stdlib.h>

#include "hub/common.h"
#include "hub/config.h"
#include "test.h"

static char *s_str, *s_secret;
static long long s_int;
static int s_bool;
static hub_props_t s_props;

static const hub_cfg_item_t table[] = {
    {"service.name", HUB_CFG_STRING, &s_str, 0, "default-name", "a name", 0, 0, NULL, NULL},
    {"service.threads", HUB_CFG_INT, &s_int, 0, "4", "a count", 1, 64, NULL, NULL},
    {"service.verbose", HUB_CFG_BOOL, &s_bool, 0, "false", "a flag", 0, 0, NULL, NULL},
    {"postgres.password", HUB_CFG_SECRET, &s_secret, 0, NULL, "a secret", 0, 0, NULL, NULL},
    {"kafka", HUB_CFG_PROPS, &s_props, 0, NULL, "client properties", 0, 0, NULL, NULL},
};

static int load(const char *path, char *errstr, size_t n)
{
    hub_cfg_free(table, HUB_ARRAY_LEN(table));
    return hub_cfg_load(path, table, HUB_ARRAY_LEN(table), errstr, n);
}

static void test_defaults(void)
{
    char errstr[512] = "";
    ASSERT_OK(load(NULL, errstr, sizeof(errstr)), errstr);
    ASSERT_STR_EQ(s_str, "default-name");
    ASSERT_INT_EQ(s_int, 4);
    ASSERT_INT_EQ(s_bool, 0);
    ASSERT_TRUE(s_secret == NULL);
    ASSERT_INT_EQ(s_props.n, 0);
}

static void test_values_and_passthrough(void)
{
    char errstr[512] = "";
    const char *dir = hub_test_tmpdir();
    const char *secret = hub_test_write_file(dir, "pw", "s3cret\n");
    char text[2048];
    setenv("HUB_TEST_BROKER", "127.0.0.1:1234", 1);
    setenv("HUB_TEST_SASL", "from-env", 1);
    snprintf(text, sizeof(text),
             "service: { name = \"x-${HUB_TEST_UNSET:-dflt}\"; threads = 8; verbose = true; };\n"
             "postgres: { password_file = \"%s\"; };\n"
             "kafka: { bootstrap_servers = \"${HUB_TEST_BROKER}\"; linger_ms = 5;\n"
             "  sasl: { mechanism = \"SCRAM-SHA-512\"; password_env = \"HUB_TEST_SASL\"; }; };\n",
             secret);
    const char *path = hub_test_write_file(dir, "ok.conf", text);
    ASSERT_OK(load(path, errstr, sizeof(errstr)), errstr);
    ASSERT_STR_EQ(s_str, "x-dflt");
    ASSERT_INT_EQ(s_int, 8);
    ASSERT_INT_EQ(s_bool, 1);
    ASSERT_STR_EQ(s_secret, "s3cret");
    ASSERT_STR_EQ(hub_props_get(&s_props, "bootstrap.servers"), "127.0.0.1:1234");
    ASSERT_STR_EQ(hub_props_get(&s_props, "linger.ms"), "5");
    ASSERT_STR_EQ(hub_props_get(&s_props, "sasl.mechanism"), "SCRAM-SHA-512");
    ASSERT_STR_EQ(hub_props_get(&s_props, "sasl.password"), "from-env");
}

/*
 * Defaults and secret file paths take ${VAR} too: a boolean default from the
 * environment (HUB_HTTP_ALLOW_REMOTE), a password_file under systemd's
 * ${CREDENTIALS_DIRECTORY}.
 */
static void test_environment(void)
{
    static int flag;
    static char *secret;
    static const hub_cfg_item_t env_table[] = {
        {"flag", HUB_CFG_BOOL, &flag, 0, "${HUB_TEST_FLAG:-false}", "a flag", 0, 0, NULL, NULL},
        {"secret", HUB_CFG_SECRET, &secret, 0, NULL, "a secret", 0, 0, NULL, NULL},
    };
    const char *dir = hub_test_tmpdir();
    char errstr[512] = "";
    char text[1024];

    hub_test_write_file(dir, "credential", "from-credentials\n");
    snprintf(text, sizeof(text), "secret_file = \"${HUB_TEST_CRED_DIR}/credential\";\n");
    const char *path = hub_test_write_file(dir, "env.conf", text);
    setenv("HUB_TEST_CRED_DIR", dir, 1);
    unsetenv("HUB_TEST_FLAG");
    ASSERT_OK(hub_cfg_load(path, env_table, HUB_ARRAY_LEN(env_table), errstr, sizeof(errstr)),
              errstr);
    ASSERT_INT_EQ(flag, 0);
    ASSERT_STR_EQ(secret, "from-credentials");
    hub_cfg_free(env_table, HUB_ARRAY_LEN(env_table));

    setenv("HUB_TEST_FLAG", "true", 1);
    ASSERT_OK(hub_cfg_load(path, env_table, HUB_ARRAY_LEN(env_table), errstr, sizeof(errstr)),
              errstr);
    ASSERT_INT_EQ(flag, 1);
    hub_cfg_free(env_table, HUB_ARRAY_LEN(env_table));

    setenv("HUB_TEST_FLAG", "yes", 1);
    ASSERT_INT_EQ(hub_cfg_load(path, env_table, HUB_ARRAY_LEN(env_table), errstr, sizeof(errstr)),
                  HUB_ECONFIG);
    ASSERT_STR_CONTAINS(errstr, "default of 'flag' must be true or false (is 'yes')");
    hub_cfg_free(env_table, HUB_ARRAY_LEN(env_table));
    unsetenv("HUB_TEST_FLAG");

    unsetenv("HUB_TEST_CRED_DIR");
    ASSERT_INT_EQ(hub_cfg_load(path, env_table, HUB_ARRAY_LEN(env_table), errstr, sizeof(errstr)),
                  HUB_ECONFIG);
    ASSERT_STR_CONTAINS(errstr, "env.conf:1");
    ASSERT_STR_CONTAINS(errstr, "HUB_TEST_CRED_DIR is not set");
    hub_cfg_free(env_table, HUB_ARRAY_LEN(env_table));
}

/* Every class of bad file gives HUB_ECONFIG and a message naming file:line and the problem. */
static void test_errors(void)
{
    static const struct {
        const char *name, *text, *expect_where, *expect_msg;
    } cases[] = {
        {"syntax.conf", "service: {\n name = ;\n};\n", "syntax.conf:2", "syntax error"},
        {"unknown.conf", "service: {\n name = \"a\";\n colour = \"red\";\n};\n", "unknown.conf:3",
         "'service.colour' is not a known setting"},
        {"toplevel.conf", "\n\nbogus = 1;\n", "toplevel.conf:3", "'bogus' is not a known"},
        {"type.conf", "service: {\n threads = \"eight\";\n};\n", "type.conf:2",
         "'service.threads' must be an integer"},
        {"range.conf", "service: {\n threads = 1000;\n};\n", "range.conf:2",
         "must be between 1 and 64"},
        {"bool.conf", "service: { verbose = 1; };\n", "bool.conf:1", "must be true or false"},
        {"str.conf", "service: { name = 7; };\n", "str.conf:1", "'service.name' must be a string"},
        {"env.conf", "\nservice: { name = \"${HUB_TEST_NOT_SET_EVER}\"; };\n", "env.conf:2",
         "HUB_TEST_NOT_SET_EVER is not set"},
        {"secret.conf", "postgres: {\n password_file = \"/nonexistent/pw\";\n};\n", "secret.conf:2",
         "/nonexistent/pw: cannot open"},
        {"group.conf", "kafka = 5;\n", "group.conf:1", "'kafka' must be a group"},
    };
    const char *dir = hub_test_tmpdir();
    char errstr[512];

    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        const char *path = hub_test_write_file(dir, cases[i].name, cases[i].text);
        errstr[0] = '\0';
        ASSERT_INT_EQ(load(path, errstr, sizeof(errstr)), HUB_ECONFIG);
        fprintf(stderr, "   %s -> %s\n", cases[i].name, errstr);
        ASSERT_STR_CONTAINS(errstr, cases[i].expect_where);
        ASSERT_STR_CONTAINS(errstr, cases[i].expect_msg);
    }
    ASSERT_INT_EQ(load("/nonexistent/hub.conf", errstr, sizeof(errstr)), HUB_ECONFIG);
    ASSERT_STR_CONTAINS(errstr, "/nonexistent/hub.conf: cannot open: No such file");
}

int main(void)
{
    RUN_TEST(test_defaults);
    RUN_TEST(test_values_and_passthrough);
    RUN_TEST(test_errors);
    RUN_TEST(test_environment);
    hub_cfg_free(table, HUB_ARRAY_LEN(table));
    return 0;
}

/*
 * test_reload_config.c: hub_service_reload() in-process, table-driven: what
 * comes back to the caller, what is reported as needing a restart, and that
 * a file that is not valid leaves everything as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/common.h"
#include "hub/groups.h"
#include "hub/log.h"
#include "hub/rules.h"
#include "hub/service.h"
#include "test.h"

static hub_groups_t s_groups;
static hub_rules_t s_rules;
static long long s_batch;

#define GROUP(id) "{ id = \"" id "\"; name = \"N\"; emails = [ \"" id "@example.org\" ]; }"

/* The file of the start: one group, a plan due at 17y6m, batch 10. */
#define BASE                                                                                       \
    "topics = { risk_flags = \"flags\"; };\n"                                                      \
    "planner = { batch_max = 10; rules = { plan_due_age = \"17y6m\"; }; };\n"                      \
    "groups = ( " GROUP("one") " );\n"

typedef struct {
    const char *what;
    const char *text;
    int err;             /* expected return */
    const char *message; /* in errstr ("" on success) */
    size_t groups;       /* groups in use afterwards */
    int plan_due_months; /* rules in use afterwards */
    const char *restart; /* in the log ("" none) */
} case_t;

static const case_t cases[] = {
    {"nothing changed", BASE, 0, "", 1, 210, ""},
    {"a group added",
     "topics = { risk_flags = \"flags\"; };\n"
     "planner = { batch_max = 10; rules = { plan_due_age = \"17y6m\"; }; };\n"
     "groups = ( " GROUP("one") ", " GROUP("two") " );\n",
     0, "", 2, 210, ""},
    {"rules and a topic changed",
     "topics = { risk_flags = \"other\"; };\n"
     "planner = { batch_max = 10; rules = { plan_due_age = \"17y\"; }; };\n"
     "groups = ( " GROUP("one") " );\n",
     0, "", 1, 204, "settings=topics.risk_flags "},
    {"batch and kafka changed",
     "kafka = { client_id = \"x\"; };\n"
     "topics = { risk_flags = \"flags\"; };\n"
     "planner = { batch_max = 11; };\n"
     "groups = ( " GROUP("one") " );\n",
     0, "", 1, 210, "settings=kafka,planner.batch_max "},
    {"a bad rule",
     "topics = { risk_flags = \"flags\"; };\n"
     "planner = { batch_max = 10;\n"
     "  rules = { plan_due_age = \"17y6\"; }; };\n"
     "groups = ( " GROUP("two") " );\n",
     HUB_ECONFIG, "hub.conf:3: 'plan_due_age' must be an age", 1, 210, ""},
    {"a bad group", "groups = ( { id = \"Bad Id\"; } );\n", HUB_ECONFIG, "hub.conf:1: ", 1, 210,
     ""},
    {"an unknown setting", BASE "\nplanner_typo = 1;\n", HUB_ECONFIG,
     "hub.conf:5: 'planner_typo' is not a known setting", 1, 210, ""},
    {"a syntax error", "planner = {\n  batch_max = ;\n};\n", HUB_ECONFIG, "hub.conf:2: ", 1, 210,
     ""},
};

static void test_reload_table(void)
{
    const char *dir = hub_test_tmpdir();
    char logpath[1024];
    hub_cfg_item_t own[] = {
        {"planner.batch_max", HUB_CFG_INT, &s_batch, 0, "10", "", 1, 1000, NULL, NULL},
        HUB_RULES_CFG_ITEM("planner.rules", &s_rules),
        HUB_GROUPS_CFG_ITEM(&s_groups),
    };
    hub_service_t svc = {.name = "hub-test", .own_group = "planner", .own = own, .nown = 3};
    const char *path = hub_test_write_file(dir, "hub.conf", BASE);
    char *argv[] = {"hub-test", "--config", (char *)path, NULL};

    ASSERT_INT_EQ(hub_service_init(&svc, 3, argv), -1);
    snprintf(logpath, sizeof(logpath), "%s/log.txt", dir);
    FILE *log = fopen(logpath, "w+");
    ASSERT_TRUE(log != NULL);
    hub_log_set_stream(log);

    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        const case_t *c = &cases[i];
        char errstr[1024] = "";
        hub_groups_t groups = {NULL, 0};
        hub_rules_t rules;
        hub_cfg_item_t items[] = {HUB_GROUPS_CFG_ITEM(&groups),
                                  HUB_RULES_CFG_ITEM("planner.rules", &rules)};

        fprintf(stderr, "  case: %s\n", c->what);
        hub_test_write_file(dir, "hub.conf", c->text);
        ASSERT_TRUE(ftruncate(fileno(log), 0) == 0 && fseek(log, 0, SEEK_SET) == 0);
        int err = hub_service_reload(&svc, items, HUB_ARRAY_LEN(items), errstr, sizeof(errstr));
        ASSERT_INT_EQ(err, c->err);
        ASSERT_STR_CONTAINS(errstr, c->message);
        ASSERT_TRUE(strchr(errstr, '"') == NULL);
        if (!err) {
            /* The caller swaps; what it did not take stays as it was. */
            hub_groups_free(&s_groups);
            s_groups = groups;
            s_rules = rules;
        } else {
            /* On error the caller's variables hold nothing. */
            ASSERT_INT_EQ(groups.n, 0);
            ASSERT_TRUE(groups.items == NULL);
        }
        ASSERT_INT_EQ(s_groups.n, c->groups);
        ASSERT_INT_EQ(s_rules.la[HUB_LA_LEICESTER].plan_due_months, c->plan_due_months);
        ASSERT_INT_EQ(s_batch, 10);
        ASSERT_STR_EQ(svc.common.topics.risk_flags, "flags");

        fflush(log);
        char *text = hub_read_file(logpath, NULL, NULL, 0);
        if (*c->restart)
            ASSERT_STR_CONTAINS(text, c->restart);
        else
            ASSERT_TRUE(strstr(text, "config_restart_needed") == NULL);
        free(text);
    }

    /* A setting the program does not have is the caller's mistake, and changes nothing. */
    char errstr[256] = "";
    long long x = 0;
    hub_cfg_item_t wrong = {"planner.nonsense", HUB_CFG_INT, &x, 0, NULL, NULL, 0, 0, NULL, NULL};
    ASSERT_INT_EQ(hub_service_reload(&svc, &wrong, 1, errstr, sizeof(errstr)), HUB_EINVAL);
    ASSERT_STR_CONTAINS(errstr, "'planner.nonsense' is not a setting of hub-test");

    /* hub_groups_reload: the swap in one call, and nothing touched on error. */
    hub_test_write_file(dir, "hub.conf",
                        "groups = ( " GROUP("one") ", " GROUP("two") ", " GROUP("three") " );\n");
    ASSERT_OK(hub_groups_reload(&svc, &s_groups, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(s_groups.n, 3);
    hub_test_write_file(dir, "hub.conf", "groups = ( " GROUP("one") ", nonsense );\n");
    ASSERT_INT_EQ(hub_groups_reload(&svc, &s_groups, errstr, sizeof(errstr)), HUB_ECONFIG);
    ASSERT_INT_EQ(s_groups.n, 3);
    ASSERT_TRUE(hub_groups_find(&s_groups, "three") != NULL);

    hub_log_set_stream(stderr);
    fclose(log);
    hub_service_fini(&svc);
}

int main(void)
{
    RUN_TEST(test_reload_table);
    return 0;
}

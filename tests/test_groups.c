/* test_groups.c: named groups: the embedded defaults, a file's groups, and every error with
 * file:line. */
#include <libconfig.h>
#include <stdlib.h>

#include "hub/common.h"
#include "hub/config.h"
#include "hub/groups.h"
#include "hub/service.h"
#include "test.h"

static hub_groups_t s_groups;
static const hub_cfg_item_t table[] = {HUB_GROUPS_CFG_ITEM(&s_groups)};

static int load(const char *path, char *errstr, size_t n)
{
    hub_cfg_free(table, HUB_ARRAY_LEN(table));
    return hub_cfg_load(path, table, HUB_ARRAY_LEN(table), errstr, n);
}

static void test_defaults(void)
{
    char errstr[512] = "";
    static const struct {
        const char *id;
        int la;
        const char *wants; /* subscriptions, space separated */
    } expected[] = {
        {"llr-transitions-subgroup", -1, "PLAN_OVERDUE ACTION_OVERDUE"},
        {"llr-strategic-partnership-executive-group", -1, "ACTION_OVERDUE GROUP_NOT_BRIEFED"},
        {"llr-exploitation-group", -1, "ACTION_OVERDUE GROUP_NOT_BRIEFED"},
        {"llr-modern-slavery-action-group", -1, "ACTION_OVERDUE GROUP_NOT_BRIEFED"},
        {"city-transitions-board", HUB_LA_LEICESTER,
         "PLAN_OVERDUE ACTION_OVERDUE GROUP_NOT_BRIEFED"},
        {"leicester-adult-social-care", HUB_LA_LEICESTER,
         "PLAN_DUE_SOON PLAN_OVERDUE ACTION_OVERDUE"},
        {"leicestershire-adult-social-care", HUB_LA_LEICESTERSHIRE,
         "PLAN_DUE_SOON PLAN_OVERDUE ACTION_OVERDUE"},
        {"rutland-adult-social-care", HUB_LA_RUTLAND, "PLAN_DUE_SOON PLAN_OVERDUE ACTION_OVERDUE"},
    };

    /* No file at all: the embedded defaults. */
    ASSERT_OK(load(NULL, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(s_groups.n, HUB_ARRAY_LEN(expected));
    for (size_t i = 0; i < HUB_ARRAY_LEN(expected); i++) {
        const hub_group_t *g = hub_groups_find(&s_groups, expected[i].id);
        ASSERT_TRUE(g != NULL);
        ASSERT_INT_EQ(g->local_authority, expected[i].la);
        ASSERT_INT_OP(g->nemails, >=, 1);
        ASSERT_STR_CONTAINS(g->emails[0], "example.org");
        ASSERT_TRUE(g->name && *g->name);
        for (int r = 0; r < HUB_GROUP_REMINDER__COUNT; r++) {
            const char *name = hub_group_reminder_name((hub_group_reminder_t)r);
            int listed = strstr(expected[i].wants, name) != NULL;
            ASSERT_INT_EQ(hub_group_wants(g, (hub_group_reminder_t)r), listed);
        }
    }
    ASSERT_STR_EQ(hub_groups_find(&s_groups, "llr-exploitation-group")->name,
                  "LLR Exploitation Group");
    ASSERT_TRUE(hub_groups_find(&s_groups, "no-such-group") == NULL);

    /* Plan reminders follow the local authority; a group without one hears of every plan. */
    const hub_group_t *shire = hub_groups_find(&s_groups, "leicestershire-adult-social-care");
    const hub_group_t *sub = hub_groups_find(&s_groups, "llr-transitions-subgroup");
    ASSERT_TRUE(hub_group_wants_plan(shire, HUB_GROUP_PLAN_DUE_SOON, HUB_LA_LEICESTERSHIRE));
    ASSERT_TRUE(!hub_group_wants_plan(shire, HUB_GROUP_PLAN_DUE_SOON, HUB_LA_RUTLAND));
    ASSERT_TRUE(hub_group_wants_plan(sub, HUB_GROUP_PLAN_OVERDUE, HUB_LA_RUTLAND));
    ASSERT_TRUE(!hub_group_wants_plan(sub, HUB_GROUP_PLAN_DUE_SOON, HUB_LA_RUTLAND));

    /* An empty file also means the defaults. */
    const char *path = hub_test_write_file(hub_test_tmpdir(), "empty.conf", "\n");
    ASSERT_OK(load(path, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(s_groups.n, HUB_ARRAY_LEN(expected));
}

static void test_file_replaces_defaults(void)
{
    char errstr[512] = "";
    const char *path =
        hub_test_write_file(hub_test_tmpdir(), "groups.conf",
                            "groups = (\n"
                            "  { id = \"board-1\"; name = \"Board One\";\n"
                            "    emails = [ \"a@example.org\", \"b.c+d@sub.example.org\" ];\n"
                            "    reminders = [ \"PLAN_DUE_SOON\", \"GROUP_NOT_BRIEFED\" ];\n"
                            "    local_authority = \"RUTLAND\"; },\n"
                            "  { id = \"quiet\"; name = \"Briefings only\";\n"
                            "    emails = ( \"q@example.org\" ); }\n"
                            ");\n");
    ASSERT_OK(load(path, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(s_groups.n, 2);
    const hub_group_t *b = hub_groups_find(&s_groups, "board-1");
    ASSERT_TRUE(b != NULL);
    ASSERT_STR_EQ(b->name, "Board One");
    ASSERT_INT_EQ(b->nemails, 2);
    ASSERT_STR_EQ(b->emails[1], "b.c+d@sub.example.org");
    ASSERT_INT_EQ(b->local_authority, HUB_LA_RUTLAND);
    ASSERT_TRUE(hub_group_wants(b, HUB_GROUP_PLAN_DUE_SOON));
    ASSERT_TRUE(hub_group_wants(b, HUB_GROUP_NOT_BRIEFED));
    ASSERT_TRUE(!hub_group_wants(b, HUB_GROUP_PLAN_OVERDUE));
    const hub_group_t *q = hub_groups_find(&s_groups, "quiet");
    ASSERT_TRUE(q != NULL);
    ASSERT_INT_EQ(q->reminders, 0);
    ASSERT_INT_EQ(q->local_authority, -1);
    ASSERT_TRUE(hub_groups_find(&s_groups, "llr-transitions-subgroup") == NULL);

    /* groups = (); is allowed: nobody is written to. */
    path = hub_test_write_file(hub_test_tmpdir(), "none.conf", "groups = ();\n");
    ASSERT_OK(load(path, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(s_groups.n, 0);
}

static void test_errors_name_file_and_line(void)
{
    static const struct {
        const char *text;
        int line;
        const char *message;
    } cases[] = {
        {"groups = (\n{ id = \"a\"; name = \"A\";\n  emails = [ \"not-an-address\" ]; }\n);\n", 3,
         "'not-an-address' is not an e-mail address"},
        {"groups = (\n{ id = \"a\"; name = \"A\"; emails = [ \"x@localhost\" ]; }\n);\n", 2,
         "is not an e-mail address"},
        {"groups = (\n{ id = \"a\"; name = \"A\"; emails = [ \"x..y@example.org\" ]; }\n);\n", 2,
         "is not an e-mail address"},
        {"groups = (\n{ id = \"a\"; name = \"A\"; emails = [ \"x@example.org\" ];\n"
         "  reminders = [ \"PLAN_DUE_SOON\",\n \"PLAN_LATE\" ]; }\n);\n",
         4, "unknown reminder kind 'PLAN_LATE'"},
        {"groups = (\n{ id = \"a\"; name = \"A\"; emails = [ \"x@example.org\" ]; },\n"
         "{ id = \"b\"; name = \"B\"; emails = [ \"y@example.org\" ]; },\n"
         "{ id = \"a\"; name = \"A again\"; emails = [ \"z@example.org\" ]; }\n);\n",
         4, "duplicate group id 'a'"},
        {"groups = (\n{ id = \"a\"; name = \"A\"; emails = [ \"x@example.org\" ];\n"
         "  local_authority = \"NOTTINGHAM\"; }\n);\n",
         3, "unknown local authority 'NOTTINGHAM'"},
        {"groups = (\n{ id = \"a\"; name = \"A\"; emails = [ \"x@example.org\" ];\n"
         "  colour = \"red\"; }\n);\n",
         3, "'colour' is not a group setting"},
        {"groups = (\n{ id = \"a\"; name = \"A\"; }\n);\n", 2, "group a: 'emails' is missing"},
        {"groups = (\n{ id = \"a\"; name = \"A\"; emails = [ ]; }\n);\n", 2,
         "needs at least one address"},
        {"groups = (\n{ id = \"a\"; name = \"A\";\n emails = [ \"x@example.org\", "
         "\"X@example.org\" ]; }\n);\n",
         3, "listed twice"},
        {"groups = (\n{ name = \"A\"; emails = [ \"x@example.org\" ]; }\n);\n", 2,
         "'id' is missing"},
        {"groups = (\n{ id = \"Bad Id\"; name = \"A\"; emails = [ \"x@example.org\" ]; }\n);\n", 2,
         "group id 'Bad Id' must be"},
        {"groups = (\n{ id = \"a\"; name = \"A\"; emails = [ \"x@example.org\" ];\n"
         " reminders = [ 1 ]; }\n);\n",
         3, "must be a string"},
        {"\ngroups = { id = \"a\"; };\n", 2, "'groups' must be a list of groups"},
        {"groups = (\n\"a\" );\n", 2, "must be a group { ... }"},
    };
    const char *dir = hub_test_tmpdir();

    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        char errstr[512] = "", want[1200];
        const char *path = hub_test_write_file(dir, "bad.conf", cases[i].text);
        int err = load(path, errstr, sizeof(errstr));
        if (err != HUB_ECONFIG)
            TEST_FAIL_("case %zu: expected HUB_ECONFIG, got %d (%s)", i, err, errstr);
        snprintf(want, sizeof(want), "%s:%d: ", path, cases[i].line);
        if (strncmp(errstr, want, strlen(want)) != 0)
            TEST_FAIL_("case %zu: \"%s\" does not start with \"%s\"", i, errstr, want);
        ASSERT_STR_CONTAINS(errstr, cases[i].message);
        /* A failed parse leaves nothing behind. */
        ASSERT_INT_EQ(s_groups.n, 0);
    }
}

static void test_address_shapes(void)
{
    static const struct {
        const char *addr;
        int ok;
    } cases[] = {
        {"a@example.org", 1},
        {"first.last@leicester.example.org", 1},
        {"ops+hub@example.org", 1},
        {"x_y-z@a-b.example.org", 1},
        {"", 0},
        {"@example.org", 0},
        {"a@", 0},
        {"a@example", 0},
        {".a@example.org", 0},
        {"a.@example.org", 0},
        {"a@-example.org", 0},
        {"a@example-.org", 0},
        {"a@example..org", 0},
        {"a b@example.org", 0},
        {"\"a\"@example.org", 0},
        {"Name <a@example.org>", 0},
        {"a@example.org\r\nBcc: b@example.org", 0},
        {"a@[127.0.0.1]", 0},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++)
        if (hub_email_valid(cases[i].addr) != cases[i].ok)
            TEST_FAIL_("hub_email_valid(\"%s\") should be %d", cases[i].addr, cases[i].ok);
    ASSERT_TRUE(hub_group_id_valid("llr-transitions-subgroup"));
    ASSERT_TRUE(!hub_group_id_valid("-x"));
    ASSERT_TRUE(!hub_group_id_valid(""));
    ASSERT_INT_EQ(hub_group_reminder_from_name("ACTION_OVERDUE"), HUB_GROUP_ACTION_OVERDUE);
    ASSERT_INT_EQ(hub_group_reminder_from_name("PLAN_DUE_SOON"), HUB_REMINDER_PLAN_DUE_SOON);
    ASSERT_INT_EQ(hub_group_reminder_from_name("nope"), -1);
}

/* One configuration file serves every program: those that do not read groups accept them. */
static void test_shared_config_file(void)
{
    const char *path = hub_test_write_file(
        hub_test_tmpdir(), "hub.conf",
        "groups = ( { id = \"g\"; name = \"G\"; emails = [ \"g@example.org\" ]; } );\n");
    char *argv[] = {"prog", "--config", (char *)path, NULL};
    hub_groups_t groups = {0};
    const hub_cfg_item_t own[] = {HUB_GROUPS_CFG_ITEM(&groups)};

    hub_service_t other = {.name = "hub-planner", .own_group = "planner", .usage = "test"};
    ASSERT_INT_EQ(hub_service_init(&other, 3, argv), -1);
    hub_service_fini(&other);

    hub_service_t reader = {
        .name = "hub-notifier", .own_group = "notifier", .usage = "test", .own = own, .nown = 1};
    ASSERT_INT_EQ(hub_service_init(&reader, 3, argv), -1);
    ASSERT_INT_EQ(groups.n, 1);
    ASSERT_STR_EQ(groups.items[0].id, "g");
    hub_service_fini(&reader);
    ASSERT_INT_EQ(groups.n, 0);
}

/* config/hub.conf writes the defaults out for operators to edit; the two must not drift. */
static void test_shipped_config_matches_defaults(void)
{
    char path[1024], errstr[512] = "";
    config_t cfg;
    hub_groups_t shipped = {0}, defaults = {0};

    snprintf(path, sizeof(path), "%s/config/hub.conf", hub_data_dir());
    config_init(&cfg);
    if (!config_read_file(&cfg, path))
        TEST_FAIL_("%s:%d: %s", path, config_error_line(&cfg), config_error_text(&cfg));
    const config_setting_t *s = config_lookup(&cfg, "groups");
    ASSERT_TRUE(s != NULL);
    ASSERT_OK(hub_groups_parse(s, &shipped, errstr, sizeof(errstr)), errstr);
    config_destroy(&cfg);
    ASSERT_OK(hub_groups_load_defaults(&defaults, errstr, sizeof(errstr)), errstr);

    ASSERT_INT_EQ(shipped.n, defaults.n);
    for (size_t i = 0; i < defaults.n; i++) {
        const hub_group_t *d = &defaults.items[i], *g = &shipped.items[i];
        ASSERT_STR_EQ(g->id, d->id);
        ASSERT_STR_EQ(g->name, d->name);
        ASSERT_INT_EQ(g->nemails, d->nemails);
        for (size_t e = 0; e < d->nemails; e++)
            ASSERT_STR_EQ(g->emails[e], d->emails[e]);
        ASSERT_INT_EQ(g->reminders, d->reminders);
        ASSERT_INT_EQ(g->local_authority, d->local_authority);
    }
    hub_groups_free(&shipped);
    hub_groups_free(&defaults);
}

int main(void)
{
    RUN_TEST(test_defaults);
    RUN_TEST(test_file_replaces_defaults);
    RUN_TEST(test_errors_name_file_and_line);
    RUN_TEST(test_address_shapes);
    RUN_TEST(test_shared_config_file);
    RUN_TEST(test_shipped_config_matches_defaults);
    hub_cfg_free(table, HUB_ARRAY_LEN(table));
    return 0;
}

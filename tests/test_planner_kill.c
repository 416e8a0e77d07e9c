/*
 * test_planner_kill.c: exactly once under crashes. 5,000 flags (many of them
 * re-flags) and some poison messages go in; hub-planner is SIGKILLed at
 * three random points mid-stream and restarted each time, and finally runs
 * as two instances sharing the partitions. A read_committed reader of the
 * alerts topic must then see, for every young person, exactly the alerts a
 * single uninterrupted pass would raise, in order, each once; and the
 * dead-letter topic exactly one copy of each poison message.
 *
 * HUB_TEST_SEED=<n> repeats a run (the seed is printed).
 */
#include "planner_support.h"

#define NFLAGS    5000
#define NSUBJECTS 1500
#define NPOISON   25

typedef struct {
    hub_local_authority_t la;
    hub_date_t dob;
    int has_state;
    hub_plan_state_t state;
    /* the alerts a single pass raises, in order */
    char (*alerts)[HUB_UUID_SIZE];
    size_t nalerts, cap;
    size_t seen; /* alerts read back so far */
} subject_t;

static subject_t subjects[NSUBJECTS];
static unsigned long long rng;
static unsigned salt;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static const char *subj(int i)
{
    static char buf[HUB_SUBJECT_KEY_SIZE];
    return pt_subject(salt, i, buf);
}

/* Categories in rough proportion: many looked after or in need, fewer of the rest. */
static hub_risk_set_t random_categories(void)
{
    static const hub_risk_category_t common[] = {
        HUB_RISK_LOOKED_AFTER,          HUB_RISK_LOOKED_AFTER,
        HUB_RISK_CHILD_IN_NEED,         HUB_RISK_CHILD_IN_NEED,
        HUB_RISK_CHILD_PROTECTION_PLAN, HUB_RISK_SEXUAL_EXPLOITATION,
        HUB_RISK_CRIMINAL_EXPLOITATION, HUB_RISK_DOMESTIC_ABUSE,
        HUB_RISK_COUNTY_LINES};
    hub_risk_set_t s = HUB_RISK_BIT(common[rnd(HUB_ARRAY_LEN(common))]);
    if (rnd(3) == 0)
        s |= HUB_RISK_BIT(rnd(HUB_RISK__COUNT));
    return s;
}

static void expect_alert(subject_t *sj, const hub_event_t *alert)
{
    if (sj->nalerts == sj->cap) {
        sj->cap = sj->cap ? sj->cap * 2 : 4;
        sj->alerts = realloc(sj->alerts, sj->cap * sizeof(*sj->alerts));
    }
    memcpy(sj->alerts[sj->nalerts++], alert->event_id, HUB_UUID_SIZE);
}

static void make_subjects(void)
{
    for (int i = 0; i < NSUBJECTS; i++) {
        /* Born so that flags between 2023 and late 2026 find them aged about 13 to 20. */
        subjects[i].dob = pt_date("2004-01-01") + (hub_date_t)rnd(365 * 8);
        subjects[i].la = (hub_local_authority_t)rnd(HUB_LA__COUNT);
    }
}

/*
 * Publishes flags number k0 to k1-1 (and the poison messages among them);
 * works out what a single pass must raise and returns how many alerts.
 */
static size_t publish(const pt_setup_t *s, hub_codec_t *codec, int k0, int k1)
{
    static const char *const agencies[] = {
        "LEICESTER_CS", "LEICESTERSHIRE_CS", "RUTLAND_CS", "LEICS_POLICE", "LLR_ICB", "LPT", "UHL"};
    hub_producer_t *producer = pt_producer();
    hub_rules_t rules;
    hub_date_t first = pt_date("2023-01-01"), last = pt_date("2026-11-20");
    size_t expected = 0;
    char errstr[256];

    hub_rules_defaults(&rules);
    for (int k = k0; k < k1; k++) {
        int i = (int)rnd(NSUBJECTS);
        subject_t *sj = &subjects[i];
        hub_event_t ev, alert;
        hub_plan_state_t next;
        int emit;

        if (k % (NFLAGS / NPOISON) == 7)
            pt_send_raw(producer, s->flags, subj(i), "\x00\x00\x00\x03\xe9garbage", 12);
        if (rnd(50) == 0) /* a corrected date of birth */
            sj->dob += (hub_date_t)rnd(60) - 30;
        if (rnd(50) == 0) /* moved to another local authority */
            sj->la = (hub_local_authority_t)rnd(HUB_LA__COUNT);
        hub_date_t on = first + (hub_date_t)rnd((unsigned)(last - first));
        if (on < sj->dob)
            on = sj->dob;
        memset(&ev, 0, sizeof(ev));
        ev = pt_flag(subj(i), agencies[rnd(HUB_ARRAY_LEN(agencies))], sj->la, "2000-01-01",
                     "2000-01-01", random_categories());
        ev.u.flagged.date_of_birth = sj->dob;
        ev.u.flagged.flagged_on = on;
        pt_send(producer, codec, s->flags, &ev, NULL);
        ASSERT_OK(hub_rules_plan(&rules, sj->has_state ? &sj->state : NULL, &ev, "hub-planner",
                                 &emit, &alert, &next, errstr, sizeof(errstr)),
                  errstr);
        if (emit) {
            sj->state = next;
            sj->has_state = 1;
            expect_alert(sj, &alert);
            expected++;
        }
    }
    pt_flush(producer);
    hub_producer_destroy(producer);
    return expected;
}

/* A read_uncommitted reader that counts what the planner has produced so far, aborted or not. */
static rd_kafka_t *observer(const char *topic)
{
    char group[128];
    snprintf(group, sizeof(group), "pt-observer-%s", hub_test_unique());
    rd_kafka_t *rk = pt_consumer_rk(group, 0, 0);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);
    for (int i = 0; i < 3; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ASSERT_INT_EQ(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

/* Waits until the observer has seen at least n records; fails if the planner exits. */
static void wait_produced(const pt_setup_t *s, rd_kafka_t *obs, size_t *seen, size_t n, pid_t pid)
{
    int64_t deadline = hub_monotonic_ms() + 90000;
    while (*seen < n) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(obs, 5);
        if (m) {
            if (!m->err)
                (*seen)++;
            rd_kafka_message_destroy(m);
            continue;
        }
        if (pt_any_exited(&pid, 1) || hub_monotonic_ms() > deadline) {
            pt_show_log(s);
            TEST_FAIL_("hub-planner stopped or stalled before producing %zu records", n);
        }
    }
}

static void check_exactly_once(hub_codec_t *codec, const pt_setup_t *s, size_t expected)
{
    size_t n, got = 0;
    pt_record_t *r = pt_read_all(codec, s->alerts, 1, &n);

    for (size_t k = 0; k < n; k++) {
        int i;
        ASSERT_TRUE(r[k].decoded);
        ASSERT_INT_EQ(sscanf(r[k].ev.u.plan_due.subject_key + 8, "%8x", (unsigned *)&i), 1);
        ASSERT_TRUE(i >= 0 && i < NSUBJECTS);
        subject_t *sj = &subjects[i];
        if (sj->seen >= sj->nalerts)
            TEST_FAIL_("subject %d: unexpected extra alert %s (expected %zu)", i, r[k].ev.event_id,
                       sj->nalerts);
        if (strcmp(r[k].ev.event_id, sj->alerts[sj->seen]) != 0)
            TEST_FAIL_("subject %d: alert %zu is %s, expected %s", i, sj->seen, r[k].ev.event_id,
                       sj->alerts[sj->seen]);
        sj->seen++;
        got++;
    }
    for (int i = 0; i < NSUBJECTS; i++)
        if (subjects[i].seen != subjects[i].nalerts)
            TEST_FAIL_("subject %d: %zu of %zu alerts arrived", i, subjects[i].seen,
                       subjects[i].nalerts);
    ASSERT_INT_EQ(got, expected);
    free(r);

    r = pt_read_all(codec, s->dlq, 1, &n);
    ASSERT_INT_EQ(n, NPOISON);
    for (size_t k = 0; k < n; k++)
        ASSERT_STR_EQ(r[k].dlq_class, "decode");
    free(r);
}

static void test_sigkill_mid_stream(void)
{
    pt_setup_t s;
    hub_codec_t *codec = pt_codec();
    const char *seed_env = getenv("HUB_TEST_SEED");
    unsigned long long seed =
        seed_env && *seed_env ? strtoull(seed_env, NULL, 10) : (unsigned long long)hub_now_ms();
    size_t seen = 0;

    fprintf(stderr, "   seed %llu (HUB_TEST_SEED to repeat)\n", seed);
    rng = seed * 2654435761ULL + 1;
    salt = (unsigned)seed;
    pt_setup(&s, "kill", 50, "");
    make_subjects();
    /* The last fifth waits until two instances share the partitions. */
    size_t expected = publish(&s, codec, 0, NFLAGS * 4 / 5);
    fprintf(stderr, "   %d flags published; %zu alerts expected\n", NFLAGS * 4 / 5, expected);

    rd_kafka_t *obs = observer(s.alerts);
    static const int lo[3] = {10, 40, 70}, hi[3] = {30, 60, 85};
    for (int round = 0; round < 3; round++) {
        size_t at =
            expected * (size_t)(lo[round] + (int)rnd((unsigned)(hi[round] - lo[round]))) / 100;
        pid_t pid = pt_spawn(&s, s.conf);
        wait_produced(&s, obs, &seen, at, pid);
        usleep(rnd(40) * 1000);
        pt_kill(pid);
        fprintf(stderr, "   killed after %zu alerts seen (aborted ones included)\n", seen);
    }
    rd_kafka_destroy(obs);

    /* Restarted, and joined by a second instance: the partitions are shared out. */
    char txn2[256], log1[1100], log2[1100];
    snprintf(txn2, sizeof(txn2), "%s-2", s.txn);
    snprintf(log1, sizeof(log1), "%s/first.log", s.dir);
    snprintf(log2, sizeof(log2), "%s/second.log", s.dir);
    const char *conf2 = pt_conf(&s, "second.conf", s.group, txn2, 50, "");
    pid_t pids[2];
    pids[0] = pt_spawn_log(s.conf, log1);
    pt_wait_log(log1, "event=state_restored", 60000);
    pids[1] = pt_spawn_log(conf2, log2);
    pt_wait_log(log2, "event=partitions_assigned count=", 60000);
    expected += publish(&s, codec, NFLAGS * 4 / 5, NFLAGS);
    fprintf(stderr, "   all %d flags and %d poison messages published; %zu alerts expected\n",
            NFLAGS, NPOISON, expected);
    ASSERT_INT_OP(expected, >, NFLAGS / 4);
    pt_wait_caught_up(&s, s.group, s.flags, pids, 2, 120000);
    pt_wait_log(log2, "event=alert_raised", 1000);
    pt_stop(&s, pids[0]);
    pt_stop(&s, pids[1]);

    size_t uncommitted = pt_count(codec, s.alerts, 0);
    fprintf(stderr, "   alerts topic: %zu records read_uncommitted (aborted included)\n",
            uncommitted);
    check_exactly_once(codec, &s, expected);
    for (int i = 0; i < NSUBJECTS; i++)
        free(subjects[i].alerts);
    hub_codec_destroy(codec);
}

int main(void)
{
    RUN_TEST(test_sigkill_mid_stream);
    return 0;
}

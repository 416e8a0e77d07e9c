/*
 * simulate.c: `hubctl simulate --people N --seed S [--now YYYY-MM-DD]`: a
 * synthetic, deterministic population of young people, their risk flags
 * (some re-flagged by a second agency) and meeting actions (some completed
 * late or never), published as the partners would publish them. No real
 * data: NHS numbers are drawn from the 999 range the NHS keeps for testing,
 * with valid check digits, and pseudonymised like real ones.
 *
 * Everything derives from the seed and the date, event ids included, so the
 * same command publishes the same events again (which the hub then takes
 * for duplicates, not for news).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/date.h"
#include "hub/events.h"
#include "hub/groups.h"
#include "hub/kafka.h"
#include "hub/rules.h"
#include "hubctl.h"

#define MAX_PEOPLE 100000

/* The namespace of simulated event ids (UUIDv5). */
#define SIM_NAMESPACE "0f4c3d8e-5b7a-4e21-9c36-7d2a81b4e6f0"

/* Used only when no linkage secret is configured: these keys mean nothing outside a demo. */
#define DEMO_SECRET "llr-hub-demo-linkage-secret-not-for-real-data"

static const char usage[] =
    "Usage: hubctl [--config FILE] simulate --people N --seed S [--now YYYY-MM-DD] [--dry-run]\n"
    "\n"
    "Publishes a synthetic population (no real data) as the partners would:\n"
    "  - N young people aged 14 to 19 at --now, in all three local authorities,\n"
    "    each flagged by their authority's children's services in the last six\n"
    "    months, with risk categories in plausible proportions;\n"
    "  - about a quarter re-flagged later by a second agency (police or health),\n"
    "    half of those adding a category;\n"
    "  - meeting actions owned by the configured groups, most about a young\n"
    "    person, some completed on time, some late, some never.\n"
    "Subject keys pseudonymise synthetic NHS numbers (999 range, valid check\n"
    "digits) under the configured linkage secret, or a demo secret when none is\n"
    "configured. The same seed and date give the same events and event ids.\n"
    "Prints what it published, and what the planner's rules (planner.rules in\n"
    "the configuration) will make of the flags on fresh topics.\n"
    "\n"
    "Options:\n"
    "      --people N   young people (1 to 100000)\n"
    "      --seed S     random seed (0 to 2^63-1)\n"
    "      --now DATE   the date the population is seen from (default: today in\n"
    "                   Europe/London; not in the future)\n"
    "      --dry-run    print the summary, publish nothing\n"
    "  -h, --help       this help\n"
    "\n"
    "Exit status: 0 published; 1 a delivery failed; 2 bad usage or configuration.\n";

/* ---- deterministic randomness ------------------------------------------------ */

typedef struct {
    uint64_t s;
} rng_t;

/* splitmix64: tiny, and the same sequence on every platform. */
static uint64_t next(rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint32_t below(rng_t *r, uint32_t n)
{
    return n ? (uint32_t)(next(r) % n) : 0;
}

/* True with probability percent/100. */
static int chance(rng_t *r, uint32_t percent)
{
    return below(r, 100) < percent;
}

/* Index drawn from weights (which need not sum to 100). */
static size_t weighted(rng_t *r, const unsigned *w, size_t n)
{
    unsigned total = 0, pick;
    for (size_t i = 0; i < n; i++)
        total += w[i];
    pick = below(r, total);
    for (size_t i = 0; i < n; i++) {
        if (pick < w[i])
            return i;
        pick -= w[i];
    }
    return n - 1;
}

/* ---- the population ------------------------------------------------------- */

/* Risk categories, weighted roughly as the partnership's caseloads are. */
static const unsigned category_weights[HUB_RISK__COUNT] = {
    [HUB_RISK_LOOKED_AFTER] = 30,          [HUB_RISK_CHILD_IN_NEED] = 25,
    [HUB_RISK_CHILD_PROTECTION_PLAN] = 12, [HUB_RISK_SEXUAL_EXPLOITATION] = 9,
    [HUB_RISK_CRIMINAL_EXPLOITATION] = 9,  [HUB_RISK_GANGS] = 3,
    [HUB_RISK_COUNTY_LINES] = 5,           [HUB_RISK_CUCKOOING] = 1,
    [HUB_RISK_DOMESTIC_ABUSE] = 10,        [HUB_RISK_EXTREMISM] = 1,
    [HUB_RISK_MODERN_SLAVERY] = 2,         [HUB_RISK_TRAFFICKING] = 2,
};

/* Local authorities, roughly by population (Rutland is small). */
static const unsigned la_weights[HUB_LA__COUNT] = {
    [HUB_LA_LEICESTER] = 40, [HUB_LA_LEICESTERSHIRE] = 52, [HUB_LA_RUTLAND] = 8};
static const char *const la_agency[HUB_LA__COUNT] = {"LEICESTER_CS", "LEICESTERSHIRE_CS",
                                                     "RUTLAND_CS"};

/* Ages 14 to 19 at the date simulated. */
static const unsigned age_weights[] = {10, 15, 25, 25, 15, 10};

/* Who re-flags: police and health partners. */
static const char *const second_agencies[] = {"LEICS_POLICE", "LPT", "LLR_ICB", "UHL"};
static const unsigned second_weights[] = {50, 20, 15, 15};

static const unsigned kind_weights[HUB_ACTION__COUNT] = {[HUB_ACTION_CARE_ACT_ASSESSMENT] = 20,
                                                         [HUB_ACTION_TRANSITION_PLAN] = 25,
                                                         [HUB_ACTION_STRATEGY_MEETING] = 10,
                                                         [HUB_ACTION_INFORMATION_SHARING] = 15,
                                                         [HUB_ACTION_REFERRAL] = 15,
                                                         [HUB_ACTION_SAFETY_PLAN] = 10,
                                                         [HUB_ACTION_OTHER] = 5};

static hub_risk_set_t draw_categories(rng_t *r)
{
    hub_risk_set_t s = HUB_RISK_BIT(weighted(r, category_weights, HUB_RISK__COUNT));
    if (chance(r, 30))
        s |= HUB_RISK_BIT(weighted(r, category_weights, HUB_RISK__COUNT));
    return s;
}

/*
 * The n-th synthetic NHS number: 999, six digits and the modulus-11 check
 * digit. Six-digit bodies are visited in a seed-dependent permutation (a
 * multiplier prime to 10^6), so numbers never repeat; bodies whose check
 * digit would be 10 do not exist and are skipped.
 */
static void nhs_number(uint64_t start, uint64_t *cursor, char out[11])
{
    for (;;) {
        uint64_t body = (start + (*cursor)++ * 7919u) % 1000000u;
        int sum = 0, check;
        snprintf(out, 11, "999%06u", (unsigned)body);
        for (int i = 0; i < 9; i++)
            sum += (out[i] - '0') * (10 - i);
        check = 11 - sum % 11;
        if (check == 11)
            check = 0;
        if (check == 10)
            continue;
        out[9] = (char)('0' + check);
        out[10] = '\0';
        return;
    }
}

/* ---- publishing ------------------------------------------------------------- */

typedef struct {
    hubctl_t *ctl;
    hub_codec_t *codec;
    hub_producer_t *producer;
    hub_validation_t validation;
    hub_buf_t buf;
    uint64_t seed;
    long counts[HUB_EVENT__COUNT];
    int dry_run;
} sim_t;

/* A deterministic event id for the n-th event of kind what. */
static void event_id(const sim_t *s, const char *what, long n, char out[HUB_UUID_SIZE])
{
    char name[128];
    int len = snprintf(name, sizeof(name), "%llu|%s|%ld", (unsigned long long)s->seed, what, n);
    hub_uuid_v5(SIM_NAMESPACE, name, (size_t)len, out);
}

/* Unix ms for some time during the working day of date (deterministic from r). */
static int64_t working_hours(rng_t *r, hub_date_t date)
{
    return ((int64_t)date * 86400 + 9 * 3600 + below(r, 7 * 3600)) * 1000;
}

static int emit(sim_t *s, const hub_event_t *ev)
{
    char errstr[512] = "";
    const char *topic = hub_service_topic(s->ctl->svc, hub_event_topic_setting(ev->type));

    if (hub_event_validate(ev, &s->validation, errstr, sizeof(errstr)) != HUB_OK ||
        hub_codec_encode(s->codec, ev, &s->buf, errstr, sizeof(errstr)) != HUB_OK) {
        /* A simulated event the hub would refuse is a bug here, not bad input. */
        hubctl_err("simulate", "%s event %s rejected: %s", hub_event_type_name(ev->type),
                   ev->event_id, errstr);
        return -1;
    }
    s->counts[ev->type]++;
    if (s->dry_run)
        return 0;
    const char *key = hub_event_key(ev);
    if (hub_producer_send(s->producer, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), s->buf.data,
                          s->buf.len, NULL, errstr, sizeof(errstr)) != HUB_OK) {
        hubctl_err("simulate", "%s", errstr);
        return -1;
    }
    return 0;
}

static int agency_configured(const sim_t *s, const char *code)
{
    for (size_t i = 0; i < s->validation.nagencies; i++)
        if (strcmp(s->validation.agencies[i], code) == 0)
            return 1;
    return 0;
}

/* What the planner will make of it all, from the same rules. */
typedef struct {
    long alerts[HUB_RULE__COUNT];
    long too_young; /* flagged only under the alert age */
    long unchanged; /* re-flags that change nothing */
    long reflags;   /* flags by a second agency */
    long new_category;
    long actions_on_time, actions_late, actions_open, actions_overdue;
    long by_la[HUB_LA__COUNT];
} outcome_t;

static int simulate_person(sim_t *s, rng_t *r, const hub_rules_t *rules, hub_date_t now, long i,
                           const char *subject, outcome_t *out)
{
    hub_event_t flag, alert;
    hub_plan_state_t state, next;
    int have_state = 0, emit_alert, nflags = 1;
    hub_local_authority_t la = (hub_local_authority_t)weighted(r, la_weights, HUB_LA__COUNT);
    /* 14 to 19 at `now`, most of them 16 or 17 (the age the hub is for). */
    int age = 14 + (int)weighted(r, age_weights, HUB_ARRAY_LEN(age_weights));
    hub_date_t youngest = hub_date_add_months(now, -age * 12);
    hub_date_t oldest = hub_date_add_months(now, -(age + 1) * 12) + 1;
    hub_date_t dob = oldest + (hub_date_t)below(r, (uint32_t)(youngest - oldest + 1));
    hub_date_t first = now - (hub_date_t)below(r, 181);
    char errstr[256];

    out->by_la[la]++;
    if (first < dob)
        first = dob;
    memset(&flag, 0, sizeof(flag));
    flag.type = HUB_EVENT_YOUNG_PERSON_FLAGGED;
    event_id(s, "flag", i * 2, flag.event_id);
    flag.occurred_at = working_hours(r, first);
    hub_strlcpy(flag.source, la_agency[la], sizeof(flag.source));
    hub_strlcpy(flag.u.flagged.subject_key, subject, sizeof(flag.u.flagged.subject_key));
    flag.u.flagged.local_authority = la;
    flag.u.flagged.date_of_birth = dob;
    flag.u.flagged.risk_categories = draw_categories(r);
    flag.u.flagged.flagged_on = first;

    for (int k = 0; k < nflags; k++) {
        if (emit(s, &flag) != 0)
            return -1;
        if (hub_rules_plan(rules, have_state ? &state : NULL, &flag, "hub-planner", &emit_alert,
                           &alert, &next, errstr, sizeof(errstr)) != HUB_OK) {
            hubctl_err("simulate", "rules: %s", errstr);
            return -1;
        }
        if (emit_alert) {
            out->alerts[alert.u.plan_due.rule]++;
            state = next;
            have_state = 1;
        } else if (have_state) {
            out->unchanged++;
        }
        /* About a quarter are flagged again, later, by a police or health partner. */
        if (k == 0 && chance(r, 25) && first < now) {
            const char *agency = second_agencies[weighted(r, second_weights, 4)];
            if (!agency_configured(s, agency))
                break;
            nflags = 2;
            out->reflags++;
            hub_date_t again = first + 1 + (hub_date_t)below(r, (uint32_t)(now - first));
            event_id(s, "flag", i * 2 + 1, flag.event_id);
            flag.occurred_at = working_hours(r, again);
            hub_strlcpy(flag.source, agency, sizeof(flag.source));
            flag.u.flagged.flagged_on = again;
            if (chance(r, 50)) {
                flag.u.flagged.risk_categories |= draw_categories(r);
                out->new_category++;
            }
        }
    }
    if (!have_state)
        out->too_young++;
    return 0;
}

static int simulate_action(sim_t *s, rng_t *r, const hub_groups_t *groups, hub_date_t now, long n,
                           const char *subject, outcome_t *out)
{
    hub_event_t ev;
    hub_date_t meeting = now - (hub_date_t)below(r, 121);
    hub_date_t due = meeting + 14 + (hub_date_t)below(r, 29);
    const char *owner;

    do
        owner = s->validation.agencies[below(r, (uint32_t)s->validation.nagencies)];
    while (strcmp(owner, "HUB_COORDINATOR") == 0 && s->validation.nagencies > 1);
    memset(&ev, 0, sizeof(ev));
    ev.type = HUB_EVENT_MEETING_ACTION_RECORDED;
    event_id(s, "action-recorded", n, ev.event_id);
    event_id(s, "action", n, ev.u.action_recorded.action_id);
    ev.occurred_at = working_hours(r, meeting);
    hub_strlcpy(ev.source, agency_configured(s, "HUB_COORDINATOR") ? "HUB_COORDINATOR" : owner,
                sizeof(ev.source));
    snprintf(ev.u.action_recorded.meeting_id, sizeof(ev.u.action_recorded.meeting_id),
             "SIM-%llu-MTG-%ld", (unsigned long long)s->seed, n / 3);
    ev.u.action_recorded.meeting_date = meeting;
    ev.u.action_recorded.kind = (hub_action_kind_t)weighted(r, kind_weights, HUB_ACTION__COUNT);
    hub_strlcpy(ev.u.action_recorded.owner_agency, owner,
                sizeof(ev.u.action_recorded.owner_agency));
    hub_strlcpy(ev.u.action_recorded.owner_group_id,
                groups->items[below(r, (uint32_t)groups->n)].id,
                sizeof(ev.u.action_recorded.owner_group_id));
    ev.u.action_recorded.due_date = due;
    if (subject) {
        ev.u.action_recorded.has_subject_key = 1;
        hub_strlcpy(ev.u.action_recorded.subject_key, subject,
                    sizeof(ev.u.action_recorded.subject_key));
    }
    if (emit(s, &ev) != 0)
        return -1;

    /* Half done in time, a fifth late, the rest not (yet). */
    uint32_t fate = below(r, 100);
    hub_date_t done = 0;
    if (fate < 50)
        done = meeting + (hub_date_t)below(r, (uint32_t)(due - meeting + 1));
    else if (fate < 70)
        done = due + 1 + (hub_date_t)below(r, 30);
    if (!done || done > now) {
        out->actions_open++;
        out->actions_overdue += due < now;
        return 0;
    }
    if (done > due)
        out->actions_late++;
    else
        out->actions_on_time++;
    char action_id[HUB_UUID_SIZE];
    hub_strlcpy(action_id, ev.u.action_recorded.action_id, sizeof(action_id));
    memset(&ev, 0, sizeof(ev));
    ev.type = HUB_EVENT_MEETING_ACTION_COMPLETED;
    event_id(s, "action-completed", n, ev.event_id);
    ev.occurred_at = working_hours(r, done);
    hub_strlcpy(ev.source, owner, sizeof(ev.source));
    hub_strlcpy(ev.u.action_completed.action_id, action_id,
                sizeof(ev.u.action_completed.action_id));
    ev.u.action_completed.completed_on = done;
    return emit(s, &ev);
}

static void print_summary(const sim_t *s, const outcome_t *o, long people, hub_date_t now)
{
    const hub_service_t *svc = s->ctl->svc;
    char date[16];
    long alerts = 0;

    for (int i = 0; i < HUB_RULE__COUNT; i++)
        alerts += o->alerts[i];
    printf("simulated %ld young people (seed %llu, as of %s): %ld Leicester, %ld Leicestershire, "
           "%ld Rutland\n",
           people, (unsigned long long)s->seed, hub_date_format(now, date, sizeof(date)),
           o->by_la[HUB_LA_LEICESTER], o->by_la[HUB_LA_LEICESTERSHIRE], o->by_la[HUB_LA_RUTLAND]);
    printf("%s:\n", s->dry_run ? "would publish (dry run)" : "published");
    printf("  %-24s %6ld to %s (%ld re-flags by a second agency, %ld of them adding a "
           "category)\n",
           "YoungPersonFlagged", s->counts[HUB_EVENT_YOUNG_PERSON_FLAGGED],
           svc->common.topics.risk_flags, o->reflags, o->new_category);
    printf("  %-24s %6ld to %s\n", "MeetingActionRecorded",
           s->counts[HUB_EVENT_MEETING_ACTION_RECORDED], svc->common.topics.meeting_actions);
    printf("  %-24s %6ld to %s (%ld on time, %ld late; %ld not completed, %ld of them overdue)\n",
           "MeetingActionCompleted", s->counts[HUB_EVENT_MEETING_ACTION_COMPLETED],
           svc->common.topics.meeting_actions, o->actions_on_time, o->actions_late, o->actions_open,
           o->actions_overdue);
    printf("expected from hub-planner (planner.rules, fresh topics):\n");
    printf("  %-24s %6ld", "TransitionPlanDue", alerts);
    for (int i = 0; i < HUB_RULE__COUNT; i++)
        printf("%s%s %ld", i ? ", " : " (", hub_transition_rule_name((hub_transition_rule_t)i),
               o->alerts[i]);
    printf(")\n");
    printf("  %-24s %6ld (flagged only under the alert age)\n", "no alert yet", o->too_young);
    printf("  %-24s %6ld\n", "re-flags changing nothing", o->unchanged);
}

int hubctl_simulate(hubctl_t *ctl, int argc, char **argv)
{
    enum { OPT_PEOPLE = 256, OPT_SEED, OPT_NOW, OPT_DRY_RUN };
    static const struct option opts[] = {{"people", required_argument, NULL, OPT_PEOPLE},
                                         {"seed", required_argument, NULL, OPT_SEED},
                                         {"now", required_argument, NULL, OPT_NOW},
                                         {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const hub_common_conf_t *common = &ctl->svc->common;
    hub_date_t today = hub_date_london(hub_now_ms()), now = today;
    long long people = -1, seed = -1;
    hub_rules_t rules;
    hub_groups_t groups = {0};
    outcome_t out;
    sim_t s;
    const char *secret = common->linkage_secret;
    char errstr[1024] = "";
    int ch, status = HUB_EXIT_USAGE;

    memset(&s, 0, sizeof(s));
    memset(&out, 0, sizeof(out));
    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_PEOPLE:
            if (hubctl_parse_count("simulate", "--people", optarg, 1, MAX_PEOPLE, &people))
                return HUB_EXIT_USAGE;
            break;
        case OPT_SEED:
            if (hubctl_parse_count("simulate", "--seed", optarg, 0, INT64_MAX, &seed))
                return HUB_EXIT_USAGE;
            break;
        case OPT_NOW:
            if (hub_date_parse(optarg, &now) != HUB_OK || now > today) {
                hubctl_err("simulate", "--now must be a date YYYY-MM-DD, not after today");
                return HUB_EXIT_USAGE;
            }
            break;
        case OPT_DRY_RUN:
            s.dry_run = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return HUB_EXIT_OK;
        default:
            fputs(usage, stderr);
            return HUB_EXIT_USAGE;
        }
    }
    if (optind != argc || people < 0 || seed < 0) {
        hubctl_err("simulate", "--people and --seed are required (see --help)");
        return HUB_EXIT_USAGE;
    }
    for (int la = 0; la < HUB_LA__COUNT; la++) {
        s.validation.agencies = (const char *const *)common->agencies;
        s.validation.nagencies = common->nagencies;
        if (!agency_configured(&s, la_agency[la])) {
            hubctl_err("simulate", "agency %s is not configured (agencies = [ ... ])",
                       la_agency[la]);
            return HUB_EXIT_USAGE;
        }
    }
    if (hub_rules_load_file(ctl->svc->config_path, "planner.rules", &rules, errstr,
                            sizeof(errstr)) != HUB_OK ||
        hubctl_groups_load(ctl, &groups, errstr, sizeof(errstr)) != HUB_OK) {
        hubctl_err("simulate", "%s", errstr);
        return HUB_EXIT_USAGE;
    }
    if (!secret || !*secret) {
        fprintf(stderr, "hubctl simulate: no linkage secret configured: subject keys use a demo "
                        "secret and match nothing real\n");
        secret = DEMO_SECRET;
    }

    s.ctl = ctl;
    s.seed = (uint64_t)seed;
    status = HUB_EXIT_FAILURE;
    if (!(s.codec = hubctl_codec_new(ctl, "simulate")))
        goto out;
    if (!s.dry_run &&
        !(s.producer = hub_producer_new(&common->kafka, NULL, errstr, sizeof(errstr)))) {
        hubctl_err("simulate", "%s", errstr);
        goto out;
    }

    rng_t r = {(uint64_t)seed};
    uint64_t nhs_start = next(&r) % 1000000u, cursor = 0;
    long nactions = 0;
    for (long i = 0; i < people; i++) {
        char nhs[11], subject[HUB_SUBJECT_KEY_SIZE];
        nhs_number(nhs_start, &cursor, nhs);
        if (hub_pseudonymise(nhs, secret, strlen(secret), subject, errstr, sizeof(errstr)) !=
            HUB_OK) {
            hubctl_err("simulate", "pseudonymise: %s", errstr);
            goto out;
        }
        if (simulate_person(&s, &r, &rules, now, i, subject, &out) != 0)
            goto out;
        /* Two in five have an action about them from a meeting, some a second. */
        for (int a = 0; a < (chance(&r, 40) ? 1 + chance(&r, 25) : 0); a++)
            if (simulate_action(&s, &r, &groups, now, nactions++, subject, &out) != 0)
                goto out;
        /* And one action in ten people is about no one in particular. */
        if (i % 10 == 9 && simulate_action(&s, &r, &groups, now, nactions++, NULL, &out) != 0)
            goto out;
    }
    if (s.producer &&
        hub_producer_flush(s.producer, (int)ctl->flush_timeout_ms, errstr, sizeof(errstr))) {
        hubctl_err("simulate", "%ld events delivered: %s", hub_producer_delivered(s.producer),
                   errstr);
        goto out;
    }
    print_summary(&s, &out, (long)people, now);
    status = HUB_EXIT_OK;
out:
    hub_producer_destroy(s.producer);
    hub_codec_destroy(s.codec);
    hub_buf_free(&s.buf);
    hub_groups_free(&groups);
    return status;
}

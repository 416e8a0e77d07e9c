/*
 * rules.h: the transition rules, as a pure library module (no I/O apart from
 * reading a configuration file), so the planner, the reminder, the simulator
 * and the tests all decide the same way.
 *
 * Given a young person's date of birth, risk categories and the date they
 * were flagged, the rules say whether a transition alert is due and by when:
 *
 *   flagged at or after adult_age (18y)     ADULT_SAFEGUARDING_REFERRAL,
 *                                           due flag + adult_referral_days
 *   flagged before alert_from_age (16y)     no alert (yet)
 *   otherwise the earliest of
 *     dob + plan_due_age (17y6m)            PLAN_AT_17Y6M
 *     LOOKED_AFTER: the looked_after_birthday (16y) plus
 *     looked_after_within_months (3)        LOOKED_AFTER_16_PLUS_3M
 *   and if the flag came after that date    LATE_REFERRAL, due flag + late_referral_days
 *
 * Ages are added with hub_date_add_months(), so a 29 February birthday is
 * reached on 28 February in common years. Every number is configurable, with
 * defaults for the partnership and an optional override per local authority
 * (see docs/planner.md and config/hub.conf).
 */
#ifndef HUB_RULES_H
#define HUB_RULES_H

#include <stddef.h>

#include "hub/config.h"
#include "hub/date.h"
#include "hub/events.h"

struct config_setting_t;

/*
 * The namespace of the planner's deterministic alert ids (UUIDv5). Fixed for
 * ever: changing it would make every reprocessed alert look new downstream.
 */
#define HUB_RULES_ALERT_NAMESPACE "6b1f3c2e-8d4a-4f6b-9a57-2e0c41d7b3a9"

/* Kafka header on every alert: the date the young person was first referred. */
#define HUB_RULES_HEADER_REFERRED_ON "hub.planner.referred_on"

/* The settings of one local authority (ages in months, periods in days). */
typedef struct hub_rule_params_s {
    int alert_from_months;            /* no alert before this age (192 = 16y) */
    int plan_due_months;              /* PLAN_AT_17Y6M (210 = 17y6m) */
    int looked_after;                 /* LOOKED_AFTER_16_PLUS_3M applies (1) */
    int looked_after_birthday_months; /* 192 = the 16th birthday */
    int looked_after_within_months;   /* 3 */
    int late_referral_days;           /* 28 */
    int adult_months;                 /* 216 = 18y */
    int adult_referral_days;          /* 28 */
} hub_rule_params_t;

typedef struct hub_rules_s {
    hub_rule_params_t defaults;          /* the partnership-wide values */
    hub_rule_params_t la[HUB_LA__COUNT]; /* what applies in each local authority */
    int overridden[HUB_LA__COUNT];       /* non-zero where the config overrides a value */
} hub_rules_t;

/* hub_rules_defaults: fills r with the built-in defaults (the design's rules) everywhere. */
void hub_rules_defaults(hub_rules_t *r);

/*
 * hub_rules_parse: a HUB_CFG_CUSTOM parser for a rules group (var is a
 * hub_rules_t *). s NULL means defaults. Accepts the settings documented in
 * docs/planner.md and one optional sub-group per local authority (LEICESTER,
 * LEICESTERSHIRE, RUTLAND) overriding any of them. Unknown settings, wrong
 * types and out-of-range values are HUB_ECONFIG with `file:line:` in errstr.
 */
int hub_rules_parse(const struct config_setting_t *s, void *var, char *errstr, size_t errstr_size);

/* The configuration table entry for a rules group at path, writing into a hub_rules_t *var. */
#define HUB_RULES_CFG_ITEM(path, var)                                                              \
    {                                                                                              \
        path, HUB_CFG_CUSTOM, (var), 0, NULL,                                                      \
            "transition rules, with per-local-authority overrides (see docs/planner.md)", 0, 0,    \
            hub_rules_parse, NULL                                                                  \
    }

/*
 * hub_rules_load_file: reads the rules group at setting_path (e.g.
 * "planner.rules") from the configuration file path, ignoring everything else
 * in the file; for programs (hubctl) that do not own that group. path NULL or
 * a file without that group gives the defaults. 0 or HUB_ECONFIG.
 */
int hub_rules_load_file(const char *path, const char *setting_path, hub_rules_t *r, char *errstr,
                        size_t errstr_size);

/*
 * hub_rules_parse_age: "17y6m", "16y" or "6m" into months. 0 or HUB_EINVAL.
 * hub_rules_format_age: the reverse into buf ("17y6m", "16y"); returns buf.
 */
int hub_rules_parse_age(const char *text, int *months);
char *hub_rules_format_age(int months, char *buf, size_t size);

/* The outcome of the rules for one flag. */
typedef struct hub_rule_decision_s {
    int alert; /* 0: no alert (younger than alert_from_age) */
    hub_transition_rule_t rule;
    hub_date_t due_date;
} hub_rule_decision_t;

/*
 * hub_rules_evaluate: applies the rules of local authority la to a young
 * person born on dob with categories cats, flagged on flagged_on. Returns 0
 * with *out filled, or HUB_EINVAL (la out of range, or flagged before birth)
 * with the reason in errstr.
 */
int hub_rules_evaluate(const hub_rules_t *r, hub_local_authority_t la, hub_date_t dob,
                       hub_risk_set_t cats, hub_date_t flagged_on, hub_rule_decision_t *out,
                       char *errstr, size_t errstr_size);

/*
 * The planner's memory of one young person: the facts behind the last alert
 * raised for them. Everything here is carried by that alert (the referral
 * date in the HUB_RULES_HEADER_REFERRED_ON header), so the memory can be
 * rebuilt from the alerts topic alone.
 */
typedef struct hub_plan_state_s {
    hub_local_authority_t local_authority;
    hub_risk_set_t risk_categories; /* union of every category flagged so far */
    hub_date_t due_date;
    hub_transition_rule_t rule;
    hub_date_t referred_on; /* the flag date the rules were first applied to */
} hub_plan_state_t;

/*
 * hub_rules_plan: what one YoungPersonFlagged event means for a young person
 * whose last alert is prev (NULL when there is none). Sets *emit to 1 when a
 * new TransitionPlanDue is due, filling *alert (producer names the service)
 * and *next (the memory to keep); to 0 when the flag changes nothing that
 * matters (same due date, no new category, same local authority) or no alert
 * is due yet, leaving *alert and *next untouched. The categories are the
 * union of prev's and the flag's; the rules run at prev's referral date, so
 * a repeated flag never turns into a late referral; if new facts (a new
 * category or corrected date of birth) move the due date to before the new
 * flag, the new flag counts as the referral (so the alert is a LATE_REFERRAL,
 * or an ADULT_SAFEGUARDING_REFERRAL at 18 or over). alert->event_id is
 * UUIDv5(HUB_RULES_ALERT_NAMESPACE, subject, local authority, rule, due date,
 * categories) and occurred_at is the flag's, so reprocessing yields the same
 * bytes. Returns 0 or HUB_EINVAL (not a flag, or inconsistent dates).
 */
int hub_rules_plan(const hub_rules_t *r, const hub_plan_state_t *prev, const hub_event_t *flag,
                   const char *producer, int *emit, hub_event_t *alert, hub_plan_state_t *next,
                   char *errstr, size_t errstr_size);

/*
 * hub_rules_alert_id: the deterministic event id of an alert with these
 * values (see hub_rules_plan). 0 or HUB_EINVAL.
 */
int hub_rules_alert_id(const char *subject_key, hub_local_authority_t la,
                       hub_transition_rule_t rule, hub_date_t due_date, hub_risk_set_t cats,
                       char out[HUB_UUID_SIZE]);

/*
 * hub_rules_state_from_alert: the memory an alert carries (referred_on comes
 * from its header; pass the due date when the header is absent).
 */
void hub_rules_state_from_alert(const hub_event_t *alert, hub_date_t referred_on,
                                hub_plan_state_t *out);

/* hub_rules_print: writes the effective rules, one line per local authority, to f (a FILE *). */
void hub_rules_print(const hub_rules_t *r, void *f);

#endif

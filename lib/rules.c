/* rules.c: the transition rules: configuration, evaluation and the re-flag decision. */
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/config.h"
#include "hub/date.h"
#include "hub/events.h"
#include "hub/rules.h"

#define MAX_AGE_MONTHS  (30 * 12)
#define MAX_PERIOD_DAYS 3650

static const hub_rule_params_t builtin = {
    .alert_from_months = 16 * 12,
    .plan_due_months = 17 * 12 + 6,
    .looked_after = 1,
    .looked_after_birthday_months = 16 * 12,
    .looked_after_within_months = 3,
    .late_referral_days = 28,
    .adult_months = 18 * 12,
    .adult_referral_days = 28,
};

void hub_rules_defaults(hub_rules_t *r)
{
    memset(r, 0, sizeof(*r));
    r->defaults = builtin;
    for (int i = 0; i < HUB_LA__COUNT; i++)
        r->la[i] = builtin;
}

int hub_rules_parse_age(const char *text, int *months)
{
    long years = 0, extra = 0;
    int seen_y = 0, seen_m = 0;
    const char *p = text;

    if (!text || !*text)
        return HUB_EINVAL;
    while (*p) {
        char *end;
        if (*p < '0' || *p > '9')
            return HUB_EINVAL;
        long v = strtol(p, &end, 10);
        if (end == p || v > MAX_AGE_MONTHS)
            return HUB_EINVAL;
        /* "y" must come before "m", each at most once: "17y6m", "16y", "6m". */
        if (*end == 'y' && !seen_y && !seen_m) {
            years = v;
            seen_y = 1;
        } else if (*end == 'm' && !seen_m) {
            extra = v;
            seen_m = 1;
        } else {
            return HUB_EINVAL;
        }
        p = end + 1;
    }
    if (years * 12 + extra > MAX_AGE_MONTHS)
        return HUB_EINVAL;
    *months = (int)(years * 12 + extra);
    return HUB_OK;
}

char *hub_rules_format_age(int months, char *buf, size_t size)
{
    if (months % 12 == 0)
        snprintf(buf, size, "%dy", months / 12);
    else if (months < 12)
        snprintf(buf, size, "%dm", months);
    else
        snprintf(buf, size, "%dy%dm", months / 12, months % 12);
    return buf;
}

/* ---- configuration -------------------------------------------------------- */

typedef enum { KIND_AGE, KIND_INT, KIND_BOOL } kind_t;

static const struct {
    const char *name;
    kind_t kind;
    size_t off;
    int max;
} settings[] = {
    {"alert_from_age", KIND_AGE, offsetof(hub_rule_params_t, alert_from_months), MAX_AGE_MONTHS},
    {"plan_due_age", KIND_AGE, offsetof(hub_rule_params_t, plan_due_months), MAX_AGE_MONTHS},
    {"looked_after", KIND_BOOL, offsetof(hub_rule_params_t, looked_after), 1},
    {"looked_after_birthday", KIND_AGE, offsetof(hub_rule_params_t, looked_after_birthday_months),
     MAX_AGE_MONTHS},
    {"looked_after_within_months", KIND_INT,
     offsetof(hub_rule_params_t, looked_after_within_months), 120},
    {"late_referral_days", KIND_INT, offsetof(hub_rule_params_t, late_referral_days),
     MAX_PERIOD_DAYS},
    {"adult_age", KIND_AGE, offsetof(hub_rule_params_t, adult_months), MAX_AGE_MONTHS},
    {"adult_referral_days", KIND_INT, offsetof(hub_rule_params_t, adult_referral_days),
     MAX_PERIOD_DAYS},
};

static int cfg_err(char *errstr, size_t errstr_size, const config_setting_t *s, const char *fmt,
                   const char *name)
{
    char where[512], msg[256];
    snprintf(msg, sizeof(msg), fmt, name);
    return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: %s",
                    hub_cfg_where(s, where, sizeof(where)), msg);
}

/* Applies one setting s of a rules group to p. *handled is 0 for a name that is not a rule. */
static int apply_setting(const config_setting_t *s, hub_rule_params_t *p, int *handled,
                         char *errstr, size_t errstr_size)
{
    const char *name = config_setting_name(s);
    *handled = 0;
    for (size_t i = 0; i < HUB_ARRAY_LEN(settings); i++) {
        int *var = (int *)((char *)p + settings[i].off);
        int v;
        if (strcmp(name, settings[i].name) != 0)
            continue;
        *handled = 1;
        switch (settings[i].kind) {
        case KIND_AGE:
            if (config_setting_type(s) != CONFIG_TYPE_STRING ||
                hub_rules_parse_age(config_setting_get_string(s), &v) != HUB_OK)
                return cfg_err(errstr, errstr_size, s,
                               "'%s' must be an age such as \"17y6m\", \"16y\" or \"9m\"", name);
            break;
        case KIND_BOOL:
            if (config_setting_type(s) != CONFIG_TYPE_BOOL)
                return cfg_err(errstr, errstr_size, s, "'%s' must be true or false", name);
            v = config_setting_get_bool(s);
            break;
        case KIND_INT: {
            long long ll;
            char fmt[128];
            if (config_setting_type(s) != CONFIG_TYPE_INT &&
                config_setting_type(s) != CONFIG_TYPE_INT64)
                return cfg_err(errstr, errstr_size, s, "'%s' must be an integer", name);
            ll = config_setting_get_int64(s);
            if (ll < 0 || ll > settings[i].max) {
                snprintf(fmt, sizeof(fmt), "'%%s' must be between 0 and %d", settings[i].max);
                return cfg_err(errstr, errstr_size, s, fmt, name);
            }
            v = (int)ll;
            break;
        }
        default:
            return HUB_EINVAL;
        }
        *var = v;
        return HUB_OK;
    }
    return HUB_OK;
}

static int check_consistent(const config_setting_t *s, const hub_rule_params_t *p,
                            const char *scope, char *errstr, size_t errstr_size)
{
    if (p->alert_from_months > p->adult_months)
        return cfg_err(errstr, errstr_size, s, "alert_from_age must not be after adult_age%s",
                       scope);
    return HUB_OK;
}

int hub_rules_parse(const config_setting_t *s, void *var, char *errstr, size_t errstr_size)
{
    hub_rules_t *r = var;
    int n, err, handled;

    hub_rules_defaults(r);
    if (!s)
        return HUB_OK;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return cfg_err(errstr, errstr_size, s, "'%s' must be a group { ... }",
                       config_setting_name(s) ? config_setting_name(s) : "rules");
    /* The partnership-wide values first: every local authority starts from them. */
    n = config_setting_length(s);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_name(e);
        if (hub_local_authority_from_name(name) >= 0) {
            if (config_setting_type(e) != CONFIG_TYPE_GROUP)
                return cfg_err(errstr, errstr_size, e, "'%s' must be a group { ... }", name);
            continue;
        }
        if ((err = apply_setting(e, &r->defaults, &handled, errstr, errstr_size)) != HUB_OK)
            return err;
        if (!handled)
            return cfg_err(errstr, errstr_size, e,
                           "'%s' is not a rules setting (see docs/planner.md)", name);
    }
    if ((err = check_consistent(s, &r->defaults, "", errstr, errstr_size)) != HUB_OK)
        return err;
    for (int la = 0; la < HUB_LA__COUNT; la++) {
        const char *laname = hub_local_authority_name((hub_local_authority_t)la);
        const config_setting_t *g = config_setting_get_member(s, laname);
        r->la[la] = r->defaults;
        if (!g)
            continue;
        r->overridden[la] = config_setting_length(g) > 0;
        for (int i = 0; i < config_setting_length(g); i++) {
            const config_setting_t *e = config_setting_get_elem(g, (unsigned)i);
            if ((err = apply_setting(e, &r->la[la], &handled, errstr, errstr_size)) != HUB_OK)
                return err;
            if (!handled)
                return cfg_err(errstr, errstr_size, e,
                               "'%s' is not a rules setting (see docs/planner.md)",
                               config_setting_name(e));
        }
        if ((err = check_consistent(g, &r->la[la], " (in a local authority override)", errstr,
                                    errstr_size)) != HUB_OK)
            return err;
    }
    return HUB_OK;
}

int hub_rules_load_file(const char *path, const char *setting_path, hub_rules_t *r, char *errstr,
                        size_t errstr_size)
{
    config_t cfg;
    int err;

    hub_rules_defaults(r);
    if (!path)
        return HUB_OK;
    config_init(&cfg);
    if (!config_read_file(&cfg, path)) {
        err = hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s:%d: %s",
                       config_error_file(&cfg) ? config_error_file(&cfg) : path,
                       config_error_line(&cfg), config_error_text(&cfg));
        goto out;
    }
    err = hub_rules_parse(config_lookup(&cfg, setting_path), r, errstr, errstr_size);
out:
    config_destroy(&cfg);
    return err;
}

/* ---- evaluation ----------------------------------------------------------- */

int hub_rules_evaluate(const hub_rules_t *r, hub_local_authority_t la, hub_date_t dob,
                       hub_risk_set_t cats, hub_date_t flagged_on, hub_rule_decision_t *out,
                       char *errstr, size_t errstr_size)
{
    const hub_rule_params_t *p;

    if ((int)la < 0 || la >= HUB_LA__COUNT)
        return hub_errf(errstr, errstr_size, HUB_EINVAL, "local_authority out of range");
    if (flagged_on < dob)
        return hub_errf(errstr, errstr_size, HUB_EINVAL, "flagged_on is before date_of_birth");
    p = &r->la[la];
    memset(out, 0, sizeof(*out));

    /* An adult is referred to adult safeguarding, whatever the categories. */
    if (flagged_on >= hub_date_add_months(dob, p->adult_months)) {
        out->alert = 1;
        out->rule = HUB_RULE_ADULT_SAFEGUARDING_REFERRAL;
        out->due_date = flagged_on + p->adult_referral_days;
        return HUB_OK;
    }
    if (flagged_on < hub_date_add_months(dob, p->alert_from_months))
        return HUB_OK;

    out->alert = 1;
    out->rule = HUB_RULE_PLAN_AT_17Y6M;
    out->due_date = hub_date_add_months(dob, p->plan_due_months);
    if (p->looked_after && (cats & HUB_RISK_BIT(HUB_RISK_LOOKED_AFTER))) {
        /* "Within 3 months of the 16th birthday": from the birthday itself, so a
           29 February birthday in a common year counts from 28 February. */
        hub_date_t birthday = hub_date_add_months(dob, p->looked_after_birthday_months);
        hub_date_t due = hub_date_add_months(birthday, p->looked_after_within_months);
        if (due < out->due_date) {
            out->rule = HUB_RULE_LOOKED_AFTER_16_PLUS_3M;
            out->due_date = due;
        }
    }
    /* A flag on the due date itself is still in time. */
    if (flagged_on > out->due_date) {
        out->rule = HUB_RULE_LATE_REFERRAL;
        out->due_date = flagged_on + p->late_referral_days;
    }
    return HUB_OK;
}

/* Appends len bytes of text to name (of size size) at *n; -1 when it would not fit. */
static int append(char *name, size_t size, size_t *n, const char *text, size_t len)
{
    if (*n + len >= size)
        return -1;
    memcpy(name + *n, text, len);
    *n += len;
    return 0;
}

int hub_rules_alert_id(const char *subject_key, hub_local_authority_t la,
                       hub_transition_rule_t rule, hub_date_t due_date, hub_risk_set_t cats,
                       char out[HUB_UUID_SIZE])
{
    char name[512], date[10];
    const char *laname = hub_local_authority_name(la), *rulename = hub_transition_rule_name(rule);
    size_t n = 0;
    int y, m, d, err = 0;

    if (!subject_key || !laname || !rulename)
        return HUB_EINVAL;
    /* Built by hand: the planner derives one id per alert, and snprintf showed in its profile. */
    hub_date_to_ymd(due_date, &y, &m, &d);
    if (y < 0 || y > 9999)
        return HUB_EINVAL;
    date[0] = (char)('0' + y / 1000);
    date[1] = (char)('0' + y / 100 % 10);
    date[2] = (char)('0' + y / 10 % 10);
    date[3] = (char)('0' + y % 10);
    date[4] = '-';
    date[5] = (char)('0' + m / 10);
    date[6] = (char)('0' + m % 10);
    date[7] = '-';
    date[8] = (char)('0' + d / 10);
    date[9] = (char)('0' + d % 10);
    err |= append(name, sizeof(name), &n, subject_key, strlen(subject_key));
    err |= append(name, sizeof(name), &n, "|", 1);
    err |= append(name, sizeof(name), &n, laname, strlen(laname));
    err |= append(name, sizeof(name), &n, "|", 1);
    err |= append(name, sizeof(name), &n, rulename, strlen(rulename));
    err |= append(name, sizeof(name), &n, "|", 1);
    err |= append(name, sizeof(name), &n, date, sizeof(date));
    err |= append(name, sizeof(name), &n, "|", 1);
    /* Categories in schema order, so the id does not depend on the order flagged. */
    for (int c = 0, first = 1; c < HUB_RISK__COUNT; c++) {
        const char *cat = hub_risk_category_name((hub_risk_category_t)c);
        if (!(cats & HUB_RISK_BIT(c)))
            continue;
        if (!first)
            err |= append(name, sizeof(name), &n, ",", 1);
        err |= append(name, sizeof(name), &n, cat, strlen(cat));
        first = 0;
    }
    if (err)
        return HUB_EINVAL;
    return hub_uuid_v5(HUB_RULES_ALERT_NAMESPACE, name, n, out);
}

void hub_rules_state_from_alert(const hub_event_t *alert, hub_date_t referred_on,
                                hub_plan_state_t *out)
{
    out->local_authority = alert->u.plan_due.local_authority;
    out->risk_categories = alert->u.plan_due.risk_categories;
    out->due_date = alert->u.plan_due.due_date;
    out->rule = alert->u.plan_due.rule;
    out->referred_on = referred_on;
}

int hub_rules_plan(const hub_rules_t *r, const hub_plan_state_t *prev, const hub_event_t *flag,
                   const char *producer, int *emit, hub_event_t *alert, hub_plan_state_t *next,
                   char *errstr, size_t errstr_size)
{
    const hub_young_person_flagged_t *f = &flag->u.flagged;
    hub_risk_set_t cats = f->risk_categories | (prev ? prev->risk_categories : 0);
    hub_date_t referred = prev ? prev->referred_on : f->flagged_on;
    hub_rule_decision_t d;
    int err;

    *emit = 0;
    if (flag->type != HUB_EVENT_YOUNG_PERSON_FLAGGED)
        return hub_errf(errstr, errstr_size, HUB_EINVAL, "not a YoungPersonFlagged event");
    if (f->flagged_on < f->date_of_birth)
        return hub_errf(errstr, errstr_size, HUB_EINVAL, "flagged_on is before date_of_birth");
    if (referred < f->date_of_birth)
        referred = f->flagged_on; /* a corrected date of birth after the first referral */
    err = hub_rules_evaluate(r, f->local_authority, f->date_of_birth, cats, referred, &d, errstr,
                             errstr_size);
    if (err)
        return err;
    if (!d.alert && prev) {
        /* A corrected date of birth made the first referral too young: start again now. */
        referred = f->flagged_on;
        err = hub_rules_evaluate(r, f->local_authority, f->date_of_birth, cats, referred, &d,
                                 errstr, errstr_size);
        if (err)
            return err;
    }
    if (!d.alert)
        return HUB_OK;
    if (prev && d.due_date != prev->due_date && d.due_date < f->flagged_on) {
        /* New facts moved the due date into the past: they count as a referral
           made today (late, or adult), and later flags are measured from it. */
        referred = f->flagged_on;
        err = hub_rules_evaluate(r, f->local_authority, f->date_of_birth, cats, referred, &d,
                                 errstr, errstr_size);
        if (err)
            return err;
    }
    if (prev && d.due_date == prev->due_date && cats == prev->risk_categories &&
        f->local_authority == prev->local_authority)
        return HUB_OK;

    memset(alert, 0, sizeof(*alert));
    alert->type = HUB_EVENT_TRANSITION_PLAN_DUE;
    alert->occurred_at = flag->occurred_at;
    hub_strlcpy(alert->source, producer, sizeof(alert->source));
    hub_strlcpy(alert->u.plan_due.subject_key, f->subject_key,
                sizeof(alert->u.plan_due.subject_key));
    alert->u.plan_due.local_authority = f->local_authority;
    alert->u.plan_due.due_date = d.due_date;
    alert->u.plan_due.rule = d.rule;
    hub_strlcpy(alert->u.plan_due.cause_event_id, flag->event_id,
                sizeof(alert->u.plan_due.cause_event_id));
    alert->u.plan_due.risk_categories = cats;
    err = hub_rules_alert_id(f->subject_key, f->local_authority, d.rule, d.due_date, cats,
                             alert->event_id);
    if (err)
        return hub_errf(errstr, errstr_size, err, "cannot derive the alert id");
    hub_rules_state_from_alert(alert, referred, next);
    *emit = 1;
    return HUB_OK;
}

void hub_rules_print(const hub_rules_t *r, void *fp)
{
    FILE *f = fp;
    for (int la = 0; la < HUB_LA__COUNT; la++) {
        const hub_rule_params_t *p = &r->la[la];
        char a[16], b[16], c[16], d[16];
        fprintf(f,
                "%-15s alert from %s; plan due at %s; looked after: %s + %d months%s; "
                "late referral: flag + %d days; adult from %s: referral + %d days%s\n",
                hub_local_authority_name((hub_local_authority_t)la),
                hub_rules_format_age(p->alert_from_months, a, sizeof(a)),
                hub_rules_format_age(p->plan_due_months, b, sizeof(b)),
                hub_rules_format_age(p->looked_after_birthday_months, c, sizeof(c)),
                p->looked_after_within_months, p->looked_after ? "" : " (off)",
                p->late_referral_days, hub_rules_format_age(p->adult_months, d, sizeof(d)),
                p->adult_referral_days, r->overridden[la] ? " [local override]" : "");
    }
}

/*
 * codec_cases.h: the table of events the codec tests, the interoperability
 * test, the fuzz corpus and the benchmark share: every event type, every enum
 * symbol, optional fields present and absent, empty and full risk sets.
 */
#ifndef HUB_TEST_CODEC_CASES_H
#define HUB_TEST_CODEC_CASES_H

#include <stdio.h>
#include <string.h>

#include "hub/date.h"
#include "hub/events.h"

#define CODEC_CASES_MAX 64

static inline hub_date_t cc_date(int y, int m, int d)
{
    hub_date_t out = 0;
    hub_date_from_ymd(y, m, d, &out);
    return out;
}

/* A deterministic, well-formed subject key that differs per n. */
static inline void cc_subject_key(int n, char out[HUB_SUBJECT_KEY_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 64; i++)
        out[i] = hex[(i * 7 + n * 13 + (i * n) % 5) & 15];
    out[64] = '\0';
}

static inline void cc_uuid(int n, char out[HUB_UUID_SIZE])
{
    snprintf(out, HUB_UUID_SIZE, "%08x-1d2e-4f3a-8b4c-%012x", 0x5eed0000u + (unsigned)n,
             0xabc000u + (unsigned)n);
}

static inline void cc_header(hub_event_t *ev, hub_event_type_t type, int n, const char *source)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    cc_uuid(n, ev->event_id);
    /* 2024-03-01T09:30:00.123Z plus n minutes */
    ev->occurred_at = INT64_C(1709285400123) + (int64_t)n * 60000;
    snprintf(ev->source, sizeof(ev->source), "%s", source);
}

/* The typical YoungPersonFlagged of the benchmark and the documentation. */
static inline void cc_typical_flagged(hub_event_t *ev)
{
    cc_header(ev, HUB_EVENT_YOUNG_PERSON_FLAGGED, 0, "LEICESTER_CS");
    cc_subject_key(0, ev->u.flagged.subject_key);
    ev->u.flagged.local_authority = HUB_LA_LEICESTER;
    ev->u.flagged.date_of_birth = cc_date(2008, 5, 17);
    ev->u.flagged.risk_categories = HUB_RISK_BIT(HUB_RISK_CHILD_IN_NEED) |
                                    HUB_RISK_BIT(HUB_RISK_CRIMINAL_EXPLOITATION) |
                                    HUB_RISK_BIT(HUB_RISK_COUNTY_LINES);
    ev->u.flagged.flagged_on = cc_date(2024, 3, 1);
}

/* Fills cases (at least CODEC_CASES_MAX) and returns how many there are. */
static inline int codec_cases(hub_event_t *cases)
{
    int n = 0;
    hub_event_t *ev;

    cc_typical_flagged(&cases[n++]);
    for (int la = 0; la < HUB_LA__COUNT; la++) {
        ev = &cases[n];
        cc_header(ev, HUB_EVENT_YOUNG_PERSON_FLAGGED, n, la == 1 ? "LEICS_POLICE" : "RUTLAND_CS");
        cc_subject_key(n, ev->u.flagged.subject_key);
        ev->u.flagged.local_authority = (hub_local_authority_t)la;
        ev->u.flagged.date_of_birth = cc_date(2007 + la, 2 + la, 28 + la % 2);
        /* One category, all of them, and every other one. */
        ev->u.flagged.risk_categories = la == 0   ? HUB_RISK_BIT(HUB_RISK_TRAFFICKING)
                                        : la == 1 ? HUB_RISK_BIT(HUB_RISK__COUNT) - 1
                                                  : 0x555;
        ev->u.flagged.flagged_on = cc_date(2024, 1 + la, 10);
        n++;
    }
    for (int r = 0; r < HUB_RULE__COUNT; r++) {
        ev = &cases[n];
        cc_header(ev, HUB_EVENT_TRANSITION_PLAN_DUE, n, "hub-planner");
        cc_subject_key(n, ev->u.plan_due.subject_key);
        ev->u.plan_due.local_authority = (hub_local_authority_t)(r % HUB_LA__COUNT);
        ev->u.plan_due.due_date = cc_date(2025, 11, 17);
        ev->u.plan_due.rule = (hub_transition_rule_t)r;
        cc_uuid(1000 + r, ev->u.plan_due.cause_event_id);
        ev->u.plan_due.risk_categories = r == 0 ? 0 : HUB_RISK_BIT(r) | HUB_RISK_BIT(11 - r);
        n++;
    }
    for (int o = 0; o < HUB_OUTCOME__COUNT; o++) {
        ev = &cases[n];
        cc_header(ev, HUB_EVENT_TRANSITION_PLAN_COMPLETED, n, "LEICS_ASC");
        cc_subject_key(n, ev->u.plan_completed.subject_key);
        ev->u.plan_completed.local_authority = (hub_local_authority_t)(o % HUB_LA__COUNT);
        ev->u.plan_completed.completed_on = cc_date(2025, 6, 1 + o);
        ev->u.plan_completed.outcome = (hub_plan_outcome_t)o;
        n++;
    }
    for (int k = 0; k < HUB_ACTION__COUNT; k++) {
        ev = &cases[n];
        hub_meeting_action_recorded_t *a = &ev->u.action_recorded;
        cc_header(ev, HUB_EVENT_MEETING_ACTION_RECORDED, n, "LLR_SAB");
        cc_uuid(2000 + k, a->action_id);
        snprintf(a->meeting_id, sizeof(a->meeting_id), "CTB-2024-%02d", k + 1);
        a->meeting_date = cc_date(2024, 2, 20);
        a->kind = (hub_action_kind_t)k;
        snprintf(a->owner_agency, sizeof(a->owner_agency), "%s",
                 k % 2 ? "LEICESTER_ASC" : "LEICS_POLICE");
        snprintf(a->owner_group_id, sizeof(a->owner_group_id), "city-transitions-board");
        a->due_date = cc_date(2024, 3, 20 + k);
        a->has_subject_key = k % 2;
        if (a->has_subject_key)
            cc_subject_key(n, a->subject_key);
        n++;
    }
    ev = &cases[n];
    cc_header(ev, HUB_EVENT_MEETING_ACTION_COMPLETED, n, "LLR_SAB");
    cc_uuid(2001, ev->u.action_completed.action_id);
    ev->u.action_completed.completed_on = cc_date(2024, 3, 18);
    n++;
    for (int i = 0; i < 2; i++) {
        ev = &cases[n];
        cc_header(ev, HUB_EVENT_MEETING_ACTION_OVERDUE, n, "hub-reminder");
        cc_uuid(2002 + i, ev->u.action_overdue.action_id);
        snprintf(ev->u.action_overdue.owner_group_id, HUB_CODE_SIZE, "llr-exploitation-group");
        ev->u.action_overdue.due_date = cc_date(2024, 3, 22);
        ev->u.action_overdue.as_of = cc_date(2024, 3, 23 + 300 * i);
        ev->u.action_overdue.days_overdue = 1 + 300 * i;
        n++;
    }
    for (int k = 0; k < HUB_REMINDER__COUNT * 2; k++) {
        ev = &cases[n];
        hub_reminder_due_t *r = &ev->u.reminder;
        cc_header(ev, HUB_EVENT_REMINDER_DUE, n, "hub-reminder");
        snprintf(r->group_id, sizeof(r->group_id), "llr-transitions-subgroup");
        r->kind = (hub_reminder_kind_t)(k % HUB_REMINDER__COUNT);
        r->has_subject_key = k < HUB_REMINDER__COUNT && r->kind != HUB_REMINDER_GROUP_NOT_BRIEFED;
        if (r->has_subject_key)
            cc_subject_key(n, r->subject_key);
        r->has_due_date = k % 2 == 0;
        if (r->has_due_date)
            r->due_date = cc_date(2024, 4, 1 + k);
        r->as_of = cc_date(2024, 3, 25);
        n++;
    }
    ev = &cases[n];
    cc_header(ev, HUB_EVENT_BRIEFING_REQUESTED, n, "LLR_SAB");
    snprintf(ev->u.briefing_requested.group_id, HUB_CODE_SIZE, "llr-modern-slavery-group");
    snprintf(ev->u.briefing_requested.title, HUB_TITLE_SIZE, "Transitions work: quarterly update");
    snprintf(ev->u.briefing_requested.link, HUB_LINK_SIZE,
             "https://docs.example.org/llr/briefings/2024-q1.pdf");
    n++;
    ev = &cases[n];
    cc_header(ev, HUB_EVENT_BRIEFING_REQUESTED, n, "LLR_SAB");
    snprintf(ev->u.briefing_requested.group_id, HUB_CODE_SIZE, "city-transitions-board");
    /* Non-ASCII text: an en dash, an accented letter and a character outside the BMP. */
    snprintf(ev->u.briefing_requested.title, HUB_TITLE_SIZE,
             "R\xc3\xa9sum\xc3\xa9 \xe2\x80\x93 transitions \xf0\x9f\x93\x8b");
    snprintf(ev->u.briefing_requested.link, HUB_LINK_SIZE, "https://docs.example.org/%0*d", 900, 7);
    n++;
    for (int i = 0; i < 2; i++) {
        ev = &cases[n];
        cc_header(ev, HUB_EVENT_BRIEFING_SENT, n, "hub-notifier");
        snprintf(ev->u.briefing_sent.group_id, HUB_CODE_SIZE, "llr-strategic-partnership-exec");
        cc_uuid(3000 + i, ev->u.briefing_sent.request_event_id);
        ev->u.briefing_sent.recipients = i ? 100000 : 0;
        n++;
    }
    return n;
}

#endif

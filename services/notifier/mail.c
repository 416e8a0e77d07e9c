/* mail.c: the notifier's plain-text messages and their SMTP delivery through libcurl. */
#include <ctype.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hub/common.h"
#include "hub/date.h"
#include "mail.h"

/* ---- text building ---------------------------------------------------------- */

void notifier_text_free(notifier_text_t *t)
{
    free(t->data);
    memset(t, 0, sizeof(*t));
}

/* A builder with a sticky error, so composing reads as a list of lines. */
typedef struct builder_s {
    notifier_text_t *t;
    int err;
} builder_t;

static void b_reserve(builder_t *b, size_t more)
{
    notifier_text_t *t = b->t;
    if (b->err || t->len + more + 1 <= t->cap)
        return;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < t->len + more + 1)
        cap *= 2;
    char *d = realloc(t->data, cap);
    if (!d) {
        b->err = HUB_ENOMEM;
        return;
    }
    t->data = d;
    t->cap = cap;
}

static void b_put(builder_t *b, const char *s, size_t n)
{
    b_reserve(b, n);
    if (b->err)
        return;
    memcpy(b->t->data + b->t->len, s, n);
    b->t->len += n;
    b->t->data[b->t->len] = '\0';
}

static void b_puts(builder_t *b, const char *s)
{
    b_put(b, s, strlen(s));
}

static void b_printf(builder_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void b_printf(builder_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = HUB_EINVAL;
        return;
    }
    b_reserve(b, (size_t)n);
    if (b->err)
        return;
    va_start(ap, fmt);
    vsnprintf(b->t->data + b->t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->t->len += (size_t)n;
}

/* ---- dates and names -------------------------------------------------------- */

static const char *const month_names[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};

/* "31 March 2026": unambiguous to every reader, unlike 03/31 or 31/03. */
static const char *long_date(hub_date_t d, char *buf, size_t size)
{
    int y, m, day;
    hub_date_to_ymd(d, &y, &m, &day);
    snprintf(buf, size, "%d %s %d", day, month_names[m - 1], y);
    return buf;
}

static const char *la_display(int la)
{
    switch (la) {
    case HUB_LA_LEICESTER:
        return "Leicester";
    case HUB_LA_LEICESTERSHIRE:
        return "Leicestershire";
    case HUB_LA_RUTLAND:
        return "Rutland";
    default:
        return NULL;
    }
}

/* RFC 5322 date in UTC, with English names whatever the locale. */
static void rfc5322_date(int64_t ms, char *buf, size_t size)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

char *notifier_mail_message_id(const char *event_id, const notifier_mail_opts_t *opts, char *buf,
                               size_t size)
{
    const char *domain = opts->msgid_domain && *opts->msgid_domain ? opts->msgid_domain : NULL;
    if (!domain) {
        const char *at = strrchr(opts->from_address, '@');
        domain = at ? at + 1 : "llr-hub.invalid";
    }
    snprintf(buf, size, "<%s@%s>", event_id, domain);
    return buf;
}

/* ---- header encoding -------------------------------------------------------- */

static int is_plain_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* Copies s with every control character (CR and LF above all) turned into a space. */
static char *sanitise(const char *s)
{
    char *c = strdup(s);
    for (char *p = c; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return c;
}

/* RFC 2047 encoded words of at most 45 bytes each, never splitting a UTF-8 sequence. */
static void b_encoded_words(builder_t *b, const char *s, const char *sep)
{
    size_t n = strlen(s), i = 0;
    unsigned char out[64];
    while (i < n) {
        size_t take = n - i > 45 ? 45 : n - i;
        while (i + take < n && take > 0 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
            take--;
        if (take == 0)
            take = n - i > 45 ? 45 : n - i;
        EVP_EncodeBlock(out, (const unsigned char *)s + i, (int)take);
        b_printf(b, "%s=?UTF-8?B?%s?=", i ? sep : "", out);
        i += take;
    }
}

/* "Name: value" folded at spaces near 76 columns, or encoded words when not ASCII. */
static void b_header_text(builder_t *b, const char *name, const char *value)
{
    char *v = sanitise(value);
    if (!v) {
        b->err = HUB_ENOMEM;
        return;
    }
    b_printf(b, "%s: ", name);
    if (!is_plain_ascii(v)) {
        b_encoded_words(b, v, "\r\n ");
    } else {
        size_t col = strlen(name) + 2;
        int first = 1;
        for (char *save = NULL, *w = strtok_r(v, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
            size_t wl = strlen(w);
            if (!first && col + 1 + wl > 76) {
                b_puts(b, "\r\n ");
                col = 1;
            } else if (!first) {
                b_puts(b, " ");
                col++;
            }
            b_puts(b, w);
            col += wl;
            first = 0;
        }
    }
    b_puts(b, "\r\n");
    free(v);
}

/* A display name as a quoted string, or as encoded words when not ASCII. */
static void b_phrase(builder_t *b, const char *name)
{
    if (!is_plain_ascii(name)) {
        b_encoded_words(b, name, " ");
        return;
    }
    b_puts(b, "\"");
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            b_puts(b, "\\");
        b_put(b, p, 1);
    }
    b_puts(b, "\"");
}

/* Quoted-printable body: CRLF line ends, soft breaks before column 76. */
static void b_quoted_printable(builder_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char enc[4];
        size_t el = 1;
        if (*p == '\n') {
            b_puts(b, "\r\n");
            col = 0;
            continue;
        }
        int at_eol = p[1] == '\n' || p[1] == '\0';
        if ((*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !at_eol)) {
            enc[0] = (char)*p;
        } else {
            enc[0] = '=';
            enc[1] = hex[*p >> 4];
            enc[2] = hex[*p & 15];
            el = 3;
        }
        if (col + el > 75) {
            b_puts(b, "=\r\n");
            col = 0;
        }
        b_put(b, enc, el);
        col += el;
    }
    if (col)
        b_puts(b, "\r\n");
}

/*
 * Wraps every line longer than 72 columns at spaces, so templates can be
 * written as one line per paragraph whatever the dates and names put into
 * them. Continuation lines keep the line's indent, plus two for "- " items.
 * A word longer than a line (a link) stays whole.
 */
static void b_wrapped(builder_t *b, const char *text)
{
    const size_t width = 72;
    for (const char *line = text; *line;) {
        size_t len = strcspn(line, "\n"), start = 0;
        size_t indent = strspn(line, " ");
        int first = 1;
        if (strncmp(line + indent, "- ", 2) == 0)
            indent += 2;
        for (;;) {
            size_t room = width - (first ? 0 : indent);
            if (len - start <= room)
                break;
            size_t cut = start + room;
            while (cut > start && line[cut] != ' ')
                cut--;
            if (cut == start) { /* one word longer than the line: break after it */
                cut = start + room;
                while (cut < len && line[cut] != ' ')
                    cut++;
                if (cut == len)
                    break;
            }
            if (!first)
                b_printf(b, "%*s", (int)indent, "");
            b_put(b, line + start, cut - start);
            b_puts(b, "\n");
            start = cut + 1;
            first = 0;
        }
        if (!first)
            b_printf(b, "%*s", (int)indent, "");
        b_put(b, line + start, len - start);
        line += len;
        if (*line == '\n') {
            b_puts(b, "\n");
            line++;
        }
    }
}

/* ---- the messages ----------------------------------------------------------- */

static const char footer[] =
    "\n-- \n"
    "LLR Transitions Hub, for the Leicester, Leicestershire and Rutland Safeguarding Adults "
    "Boards. This is an automated message; the hub never sends names or NHS numbers. Please "
    "do not reply to it.\n";

/*
 * The templates below write one line per paragraph; b_wrapped() folds them.
 * They name no person: a subject key, dates and what to do.
 */
static void plan_reminder(builder_t *body, builder_t *subject, const hub_reminder_due_t *r,
                          const char *la)
{
    char due[32], asof[32], when[32];
    long days = r->has_due_date ? (long)r->due_date - (long)r->as_of : 0;
    const char *key = r->has_subject_key ? r->subject_key : "(not given)";

    if (r->has_due_date)
        long_date(r->due_date, due, sizeof(due));
    else
        hub_strlcpy(due, "(date not given)", sizeof(due));
    long_date(r->as_of, asof, sizeof(asof));

    if (r->kind == HUB_REMINDER_PLAN_DUE_SOON) {
        if (days <= 0)
            hub_strlcpy(when, "today", sizeof(when));
        else if (days == 1)
            hub_strlcpy(when, "tomorrow", sizeof(when));
        else
            snprintf(when, sizeof(when), "in %ld days", days);
        b_printf(subject, "Transition plan due by %s", due);
        b_printf(body,
                 "A transition plan is due by %s, %s, for the young person with subject "
                 "key\n\n    %s\n\n",
                 due, when, key);
        if (la)
            b_printf(body, "Local authority: %s.\n\n", la);
        b_printf(body,
                 "What to do:\n"
                 "- Find the young person in your own case system by the subject key.\n"
                 "- Make sure the transition plan is agreed and recorded by %s.\n"
                 "- When it is, record the completed plan in the hub "
                 "(TransitionPlanCompleted) so that the reminders stop.\n",
                 due);
    } else {
        b_printf(subject, "Transition plan overdue since %s", due);
        b_printf(body,
                 "A transition plan was due by %s for the young person with subject "
                 "key\n\n    %s\n\n"
                 "It has not been recorded as completed and is %ld day%s overdue.\n\n",
                 due, key, -days, -days == 1 ? "" : "s");
        if (la)
            b_printf(body, "Local authority: %s.\n\n", la);
        b_puts(body, "What to do:\n"
                     "- Find the young person in your own case system by the subject key.\n"
                     "- Agree the transition plan as a priority, or record why there will be "
                     "none (TransitionPlanCompleted with its outcome).\n"
                     "- If it is blocked, raise it with the LLR Transitions Subgroup.\n");
    }
    if (la)
        b_printf(subject, " (%s)", la);
    b_printf(body, "\nThis reminder was raised for %s.\n", asof);
}

static void briefing_reminder(builder_t *body, builder_t *subject, const hub_reminder_due_t *r,
                              const hub_group_t *grp)
{
    char due[32], asof[32];
    long_date(r->as_of, asof, sizeof(asof));
    b_printf(subject, "Transitions briefing overdue for %s", grp->name);
    if (r->has_due_date)
        b_printf(body,
                 "Your group was due a briefing on the transitions work by %s, and none has "
                 "been recorded since.\n",
                 long_date(r->due_date, due, sizeof(due)));
    else
        b_puts(body, "No briefing on the transitions work has been recorded for your group.\n");
    b_puts(body, "\nThe transitions work supports young people aged 16 and over who were "
                 "assessed as needing extra support to reduce risk, as they move from "
                 "children's to adult services (Safeguarding Adults Board priority SAB4).\n\n"
                 "What to do:\n"
                 "- Ask the LLR Transitions Subgroup for a briefing, or put the transitions "
                 "work on the agenda of your next meeting.\n");
    b_printf(body, "\nThis reminder was raised for %s.\n", asof);
}

static void action_overdue(builder_t *body, builder_t *subject,
                           const hub_meeting_action_overdue_t *a)
{
    char due[32], asof[32];
    long_date(a->due_date, due, sizeof(due));
    long_date(a->as_of, asof, sizeof(asof));
    b_printf(subject, "Meeting action overdue since %s", due);
    b_printf(body,
             "A meeting action owned by your group was due by %s and has not been recorded "
             "as completed: on %s it was %d day%s overdue.\n\n"
             "Action reference: %s\n\n"
             "What to do:\n"
             "- Complete the action and record its completion in the hub "
             "(MeetingActionCompleted), or\n"
             "- agree a new date with the chair of the meeting that set it, and record the "
             "action again with that date.\n",
             due, asof, (int)a->days_overdue, a->days_overdue == 1 ? "" : "s", a->action_id);
}

static void briefing(builder_t *body, builder_t *subject, const hub_briefing_requested_t *br)
{
    char *title = sanitise(br->title);
    if (!title) {
        body->err = HUB_ENOMEM;
        return;
    }
    b_printf(subject, "Briefing: %s", title);
    b_printf(body,
             "The LLR Transitions Subgroup has sent your group a briefing on the transitions "
             "work:\n\n    %s\n\n"
             "Read it here:\n\n    %s\n\n"
             "What to do:\n"
             "- Read the briefing before your next meeting and share it with your members.\n"
             "- Send questions or comments to the LLR Transitions Subgroup.\n",
             title, br->link);
    free(title);
}

int notifier_mail_compose(const hub_event_t *ev, const hub_group_t *grp, int la,
                          const notifier_mail_opts_t *opts, int64_t now_ms, notifier_text_t *out,
                          char *errstr, size_t errstr_size)
{
    notifier_text_t body_text = {0}, subject_text = {0};
    builder_t body = {&body_text, 0}, subject = {&subject_text, 0}, msg = {out, 0};
    char date[64], msgid[160];
    int err = HUB_OK;

    out->len = 0;
    b_printf(&body, "Dear %s,\n\n", grp->name);
    switch (ev->type) {
    case HUB_EVENT_REMINDER_DUE:
        if (ev->u.reminder.kind == HUB_REMINDER_GROUP_NOT_BRIEFED)
            briefing_reminder(&body, &subject, &ev->u.reminder, grp);
        else
            plan_reminder(&body, &subject, &ev->u.reminder, la_display(la));
        break;
    case HUB_EVENT_MEETING_ACTION_OVERDUE:
        action_overdue(&body, &subject, &ev->u.action_overdue);
        break;
    case HUB_EVENT_BRIEFING_REQUESTED:
        briefing(&body, &subject, &ev->u.briefing_requested);
        break;
    default:
        err = hub_errf(errstr, errstr_size, HUB_EINVAL, "the notifier does not send %s",
                       hub_event_type_name(ev->type) ? hub_event_type_name(ev->type) : "?");
        goto out;
    }
    b_printf(&body, "%sReference: %s\n", footer, ev->event_id);
    if (body.err || subject.err) {
        err = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto out;
    }

    rfc5322_date(now_ms, date, sizeof(date));
    b_printf(&msg, "Date: %s\r\nFrom: ", date);
    b_phrase(&msg, opts->from_name && *opts->from_name ? opts->from_name : "LLR Transitions Hub");
    b_printf(&msg, " <%s>\r\nTo: ", opts->from_address);
    for (size_t i = 0; i < grp->nemails; i++) {
        if (i)
            b_puts(&msg, ",\r\n ");
        b_phrase(&msg, grp->name);
        b_printf(&msg, " <%s>", grp->emails[i]);
    }
    b_puts(&msg, "\r\n");
    b_header_text(&msg, "Subject", subject_text.data);
    b_printf(&msg,
             "Message-ID: %s\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n"
             "Auto-Submitted: auto-generated\r\n"
             "X-LLR-Hub-Event-Id: %s\r\n"
             "X-LLR-Hub-Event-Type: %s\r\n"
             "\r\n",
             notifier_mail_message_id(ev->event_id, opts, msgid, sizeof(msgid)), ev->event_id,
             hub_event_type_name(ev->type));
    notifier_text_t wrapped_text = {0};
    builder_t wrapped = {&wrapped_text, 0};
    b_wrapped(&wrapped, body_text.data);
    if (!wrapped.err)
        b_quoted_printable(&msg, wrapped_text.data);
    notifier_text_free(&wrapped_text);
    if (wrapped.err)
        msg.err = wrapped.err;
    if (msg.err)
        err = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
out:
    notifier_text_free(&body_text);
    notifier_text_free(&subject_text);
    return err;
}

/* ---- SMTP ------------------------------------------------------------------- */

struct notifier_smtp_s {
    CURL *h;
    void (*progress)(void *opaque);
    void *progress_opaque;
    char errbuf[CURL_ERROR_SIZE];
    /* What the conversation last did, for telling a bad recipient from a bad server. */
    char last_verb[16];
    char last_reply[160];
    int quitting;
    /* The message being uploaded. */
    const char *msg;
    size_t len, pos;
};

/* A slow server must not look like a hung service: let the caller heartbeat. */
static int progress_cb(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    notifier_smtp_t *s = userp;
    if (s->progress)
        s->progress(s->progress_opaque);
    return 0;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    notifier_smtp_t *s = userp;
    size_t n = size * nitems, left = s->len - s->pos;
    if (n > left)
        n = left;
    memcpy(buf, s->msg + s->pos, n);
    s->pos += n;
    return n;
}

/* Keeps the reply text without any word holding an address. */
static void keep_reply(notifier_smtp_t *s, const char *data, size_t size)
{
    char line[512], *save = NULL;
    size_t n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
    memcpy(line, data, n);
    line[n] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    s->last_reply[0] = '\0';
    for (char *w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        if (strchr(w, '@') || strchr(w, '<'))
            continue;
        size_t have = strlen(s->last_reply);
        snprintf(s->last_reply + have, sizeof(s->last_reply) - have, "%s%s", have ? " " : "", w);
    }
}

/*
 * librdkafka-style verbose output is not wanted; the debug hook only notes the
 * last SMTP verb sent and the last reply, never addresses or message text.
 */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *userp)
{
    notifier_smtp_t *s = userp;
    if (type == CURLINFO_HEADER_OUT && !s->quitting) {
        size_t n = 0;
        while (n < size && n < sizeof(s->last_verb) - 1 && isalpha((unsigned char)data[n]))
            n++;
        if (n == 4 && strncasecmp(data, "QUIT", 4) == 0) {
            s->quitting = 1;
            return 0;
        }
        memcpy(s->last_verb, data, n);
        s->last_verb[n] = '\0';
    } else if (type == CURLINFO_DATA_OUT && !s->quitting) {
        hub_strlcpy(s->last_verb, "BODY", sizeof(s->last_verb));
    } else if (type == CURLINFO_HEADER_IN && !s->quitting) {
        keep_reply(s, data, size);
    }
    return 0;
}

notifier_smtp_t *notifier_smtp_new(const notifier_smtp_opts_t *o, char *errstr, size_t errstr_size)
{
    notifier_smtp_t *s = NULL;
    long use_ssl;
    int implicit_tls = strncasecmp(o->url, "smtps://", 8) == 0;

    if (!implicit_tls && strncasecmp(o->url, "smtp://", 7) != 0) {
        hub_errf(errstr, errstr_size, HUB_ECONFIG,
                 "notifier.smtp.url must start with smtp:// or smtps://");
        return NULL;
    }
    if (strcmp(o->starttls, "none") == 0)
        use_ssl = implicit_tls ? CURLUSESSL_ALL : CURLUSESSL_NONE;
    else if (strcmp(o->starttls, "try") == 0)
        use_ssl = implicit_tls ? CURLUSESSL_ALL : CURLUSESSL_TRY;
    else if (strcmp(o->starttls, "required") == 0)
        use_ssl = CURLUSESSL_ALL;
    else {
        hub_errf(errstr, errstr_size, HUB_ECONFIG,
                 "notifier.smtp.starttls must be none, try or required (is '%s')", o->starttls);
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        hub_errf(errstr, errstr_size, HUB_EIO, "curl_global_init failed");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s || !(s->h = curl_easy_init())) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "cannot create a curl handle");
        goto fail;
    }
    CURL *h = s->h;
    s->progress = o->progress;
    s->progress_opaque = o->progress_opaque;
    if (curl_easy_setopt(h, CURLOPT_URL, o->url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, s) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_READDATA, s) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_VERBOSE, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_DEBUGDATA, s) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USE_SSL, use_ssl) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, o->verify_peer ? 1L : 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, o->verify_peer ? 2L : 0L) != CURLE_OK) {
        hub_errf(errstr, errstr_size, HUB_ECONFIG, "libcurl refused an SMTP option");
        goto fail;
    }
    if (o->ca_file && *o->ca_file && curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file) != CURLE_OK) {
        hub_errf(errstr, errstr_size, HUB_ECONFIG, "libcurl refused notifier.smtp.ca_file");
        goto fail;
    }
    if (o->username && *o->username &&
        (curl_easy_setopt(h, CURLOPT_USERNAME, o->username) != CURLE_OK ||
         curl_easy_setopt(h, CURLOPT_PASSWORD, o->password ? o->password : "") != CURLE_OK)) {
        hub_errf(errstr, errstr_size, HUB_ECONFIG, "libcurl refused the SMTP credentials");
        goto fail;
    }
    return s;
fail:
    notifier_smtp_destroy(s);
    if (!s)
        curl_global_cleanup();
    return NULL;
}

void notifier_smtp_destroy(notifier_smtp_t *s)
{
    if (!s)
        return;
    if (s->h)
        curl_easy_cleanup(s->h);
    free(s);
    curl_global_cleanup();
}

notifier_smtp_result_t notifier_smtp_send(notifier_smtp_t *s, const char *from,
                                          const char *recipient, const char *msg, size_t len,
                                          long *code, char *reason, size_t reason_size)
{
    char from_path[320], rcpt_path[320];
    struct curl_slist *rcpt = NULL, *tmp;
    CURLcode rc;
    notifier_smtp_result_t result;

    snprintf(from_path, sizeof(from_path), "<%s>", from);
    snprintf(rcpt_path, sizeof(rcpt_path), "<%s>", recipient);
    *code = 0;
    if (!(tmp = curl_slist_append(NULL, rcpt_path))) {
        hub_strlcpy(reason, "out of memory", reason_size);
        return NOTIFIER_SMTP_TRANSIENT;
    }
    rcpt = tmp;
    s->msg = msg;
    s->len = len;
    s->pos = 0;
    s->errbuf[0] = s->last_verb[0] = s->last_reply[0] = '\0';
    s->quitting = 0;
    curl_easy_setopt(s->h, CURLOPT_MAIL_FROM, from_path);
    curl_easy_setopt(s->h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(s->h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);

    rc = curl_easy_perform(s->h);
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, code);
    /* The list must not outlive this call, and the handle must not point at it. */
    curl_easy_setopt(s->h, CURLOPT_MAIL_RCPT, NULL);
    curl_slist_free_all(rcpt);

    if (rc == CURLE_OK) {
        snprintf(reason, reason_size, "accepted: %s", s->last_reply);
        return NOTIFIER_SMTP_ACCEPTED;
    }
    /*
     * A 5xx to MAIL, RCPT, DATA or the message is about this message or
     * address and will not change by waiting. A 5xx to the greeting, EHLO,
     * STARTTLS or AUTH is about the server or our settings: waiting for an
     * operator to fix it must not throw every message away.
     */
    int message_stage = strcmp(s->last_verb, "MAIL") == 0 || strcmp(s->last_verb, "RCPT") == 0 ||
                        strcmp(s->last_verb, "DATA") == 0 || strcmp(s->last_verb, "BODY") == 0;
    result = *code >= 500 && *code <= 599 && message_stage ? NOTIFIER_SMTP_PERMANENT
                                                           : NOTIFIER_SMTP_TRANSIENT;
    snprintf(reason, reason_size, "%s (after %s; server replied %s)",
             s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc),
             s->last_verb[0] ? s->last_verb : "connect", s->last_reply[0] ? s->last_reply : "-");
    return result;
}

/*
 * mail.h: hub-notifier's e-mail: the plain-text message for an event, and
 * SMTP delivery with libcurl, one recipient per transaction so each address
 * has its own outcome.
 */
#ifndef NOTIFIER_MAIL_H
#define NOTIFIER_MAIL_H

#include <stddef.h>
#include <stdint.h>

#include "hub/events.h"
#include "hub/groups.h"

/* A growable text buffer. */
typedef struct notifier_text_s {
    char *data;
    size_t len;
    size_t cap;
} notifier_text_t;

/* notifier_text_free: releases the buffer; it may be reused. */
void notifier_text_free(notifier_text_t *t);

typedef struct notifier_mail_opts_s {
    const char *from_address; /* envelope and From: address */
    const char *from_name;    /* From: display name */
    const char *msgid_domain; /* right-hand side of Message-ID; NULL: from_address's domain */
} notifier_mail_opts_t;

/*
 * notifier_mail_compose: writes the whole RFC 5322 message (CRLF line ends,
 * quoted-printable UTF-8 body) for ev addressed to grp into out, replacing
 * what it held. la is the young person's local authority for plan reminders
 * (-1 when unknown); now_ms stamps the Date header. The Message-ID is derived
 * from the event id, so a message sent twice carries the same id. The text
 * names no person: only the subject key, dates and what to do. Returns 0,
 * HUB_EINVAL (an event type the notifier does not send) or HUB_ENOMEM.
 */
int notifier_mail_compose(const hub_event_t *ev, const hub_group_t *grp, int la,
                          const notifier_mail_opts_t *opts, int64_t now_ms, notifier_text_t *out,
                          char *errstr, size_t errstr_size);

/* notifier_mail_message_id: "<event_id@domain>" into buf; returns buf. */
char *notifier_mail_message_id(const char *event_id, const notifier_mail_opts_t *opts, char *buf,
                               size_t size);

typedef enum {
    NOTIFIER_SMTP_ACCEPTED = 0, /* the server took the message for this recipient */
    NOTIFIER_SMTP_TRANSIENT,    /* try again later: no connection, timeout, 4xx, TLS/auth */
    NOTIFIER_SMTP_PERMANENT,    /* a 5xx answer to MAIL, RCPT or the message itself */
} notifier_smtp_result_t;

typedef struct notifier_smtp_opts_s {
    const char *url;      /* smtp://host:port or smtps://host:port */
    const char *starttls; /* "none", "try" or "required" (smtp:// only) */
    const char *username; /* NULL or "": no authentication */
    const char *password;
    const char *ca_file; /* NULL or "": the system's CA store */
    int verify_peer;
    long connect_timeout_ms;
    long timeout_ms;
    /* Called now and then while a transaction is under way (e.g. a heartbeat); may be NULL. */
    void (*progress)(void *opaque);
    void *progress_opaque;
} notifier_smtp_opts_t;

typedef struct notifier_smtp_s notifier_smtp_t;

/*
 * notifier_smtp_new: an SMTP client (no connection is made yet). NULL with the
 * reason in errstr on a bad option.
 */
notifier_smtp_t *notifier_smtp_new(const notifier_smtp_opts_t *opts, char *errstr,
                                   size_t errstr_size);

/* notifier_smtp_destroy: closes the connection and frees. NULL is fine. */
void notifier_smtp_destroy(notifier_smtp_t *s);

/*
 * notifier_smtp_send: one SMTP transaction delivering msg to one recipient.
 * *code gets the server's last reply code (0 if none), and reason a short
 * text for logs and dead letters: curl's message and the server's reply
 * code, never an address.
 */
notifier_smtp_result_t notifier_smtp_send(notifier_smtp_t *s, const char *from,
                                          const char *recipient, const char *msg, size_t len,
                                          long *code, char *reason, size_t reason_size);

#endif

/*
 * pseudonymise.c: `hubctl pseudonymise <nhs-number>|-`: the subject_key a
 * partner publishes instead of the NHS number. Messages never repeat the
 * number, so a mistyped one does not end up in a terminal log or a ticket.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/events.h"
#include "hubctl.h"

static const char usage[] =
    "Usage: hubctl [--config FILE] pseudonymise <nhs-number>\n"
    "       hubctl [--config FILE] pseudonymise -     (one number per line on stdin)\n"
    "\n"
    "Prints the subject_key for an NHS number: lower-case hex HMAC-SHA256 of its\n"
    "ten digits under the partnership's linkage secret (linkage.secret, or\n"
    "linkage.secret_file / linkage.secret_env in the configuration). Spaces and\n"
    "hyphens are ignored; the modulus-11 check digit must match. With '-' the\n"
    "numbers are read from stdin (so they stay out of the shell history and the\n"
    "process list): one key per line out, blank lines skipped.\n"
    "\n"
    "Exit status: 0 done; 1 an invalid NHS number; 2 bad usage, or no linkage\n"
    "secret configured.\n";

static int from_stdin(const char *secret)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, bad = 0;

    while ((len = getline(&line, &cap, stdin)) >= 0) {
        char key[HUB_SUBJECT_KEY_SIZE], errstr[256] = "";
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (line[strspn(line, " \t")] == '\0')
            continue;
        if (memchr(line, '\0', (size_t)len) ||
            hub_pseudonymise(line, secret, strlen(secret), key, errstr, sizeof(errstr)) != HUB_OK) {
            fprintf(stderr, "<stdin>:%ld: %s\n", lineno,
                    *errstr ? errstr : "not a valid NHS number");
            bad++;
            continue;
        }
        puts(key);
    }
    free(line);
    return bad ? HUB_EXIT_FAILURE : HUB_EXIT_OK;
}

int hubctl_pseudonymise(hubctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *secret = ctl->svc->common.linkage_secret;
    char key[HUB_SUBJECT_KEY_SIZE], errstr[256] = "";
    int ch;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage, stdout);
            return HUB_EXIT_OK;
        }
        fputs(usage, stderr);
        return HUB_EXIT_USAGE;
    }
    if (argc - optind != 1) {
        fputs(usage, stderr);
        return HUB_EXIT_USAGE;
    }
    if (!secret || !*secret) {
        hubctl_err("pseudonymise", "no linkage secret is configured: set linkage.secret_file, "
                                   "linkage.secret_env or linkage.secret");
        return HUB_EXIT_USAGE;
    }
    if (strcmp(argv[optind], "-") == 0)
        return from_stdin(secret);
    if (hub_pseudonymise(argv[optind], secret, strlen(secret), key, errstr, sizeof(errstr)) !=
        HUB_OK) {
        hubctl_err("pseudonymise", "%s", errstr);
        return HUB_EXIT_FAILURE;
    }
    puts(key);
    return HUB_EXIT_OK;
}

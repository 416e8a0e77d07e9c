/* date.c: proleptic Gregorian calendar arithmetic; no dependence on the process time zone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/date.h"

/* Days from 1970-01-01 to y-m-d (civil calendar), after H. Hinnant's algorithm. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

int hub_date_is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && hub_date_is_leap(y) ? 29 : dim[m - 1];
}

int hub_date_from_ymd(int y, int m, int d, hub_date_t *out)
{
    if (y < 1800 || y > 9999 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return HUB_EINVAL;
    *out = (hub_date_t)days_from_civil(y, m, d);
    return HUB_OK;
}

void hub_date_to_ymd(hub_date_t date, int *y, int *m, int *d)
{
    civil_from_days(date, y, m, d);
}

int hub_date_parse(const char *text, hub_date_t *out)
{
    int y, m, d, n = 0;
    if (strlen(text) != 10 || text[4] != '-' || text[7] != '-')
        return HUB_EINVAL;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (text[i] < '0' || text[i] > '9'))
            return HUB_EINVAL;
    if (sscanf(text, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10)
        return HUB_EINVAL;
    return hub_date_from_ymd(y, m, d, out);
}

char *hub_date_format(hub_date_t date, char *buf, size_t size)
{
    int y, m, d;
    civil_from_days(date, &y, &m, &d);
    snprintf(buf, size, "%04d-%02d-%02d", y, m, d);
    return buf;
}

hub_date_t hub_date_add_months(hub_date_t date, int months)
{
    int y, m, d;
    civil_from_days(date, &y, &m, &d);
    int total = y * 12 + (m - 1) + months;
    y = total / 12;
    m = total % 12 + 1;
    if (d > days_in_month(y, m))
        d = days_in_month(y, m);
    return (hub_date_t)days_from_civil(y, m, d);
}

int hub_date_age_years(hub_date_t born, hub_date_t on)
{
    int by, bm, bd, y, m, d;
    civil_from_days(born, &by, &bm, &bd);
    civil_from_days(on, &y, &m, &d);
    int age = y - by;
    /* Has this year's birthday (clamped, as hub_date_add_months does) happened yet? */
    if (hub_date_add_months(born, age * 12) > on)
        age--;
    return age;
}

/* Unix seconds of 01:00 UTC on the last Sunday of month m in year y (BST boundaries). */
static int64_t last_sunday_0100(int y, int m)
{
    int64_t last = days_from_civil(y, m, days_in_month(y, m));
    int64_t wd = (last + 4) % 7; /* 1970-01-01 was a Thursday (4); 0 = Sunday */
    if (wd < 0)
        wd += 7;
    return (last - wd) * 86400 + 3600;
}

hub_date_t hub_date_london(int64_t ms)
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t day = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    int y, m, d;
    civil_from_days(day, &y, &m, &d);
    /* British Summer Time: UTC+1 between the last Sundays of March and October at 01:00 UTC. */
    if (s >= last_sunday_0100(y, 3) && s < last_sunday_0100(y, 10))
        s += 3600;
    return (hub_date_t)(s >= 0 ? s / 86400 : -((-s + 86399) / 86400));
}

char *hub_timestamp_format(int64_t ms, char *buf, size_t size)
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t frac = ms - s * 1000;
    int64_t day = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    int64_t sod = s - day * 86400;
    int y, m, d;
    civil_from_days(day, &y, &m, &d);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, (int)(sod / 3600),
             (int)(sod / 60 % 60), (int)(sod % 60), (int)frac);
    return buf;
}

int hub_timestamp_parse(const char *text, int64_t *ms)
{
    int y, mo, d, h, mi, sec, n = 0;
    hub_date_t date;
    int64_t frac = 0, off = 0;
    const char *p;

    if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return HUB_EINVAL;
    if (hub_date_from_ymd(y, mo, d, &date) != HUB_OK || h > 23 || mi > 59 || sec > 59 || h < 0 ||
        mi < 0 || sec < 0)
        return HUB_EINVAL;
    p = text + 19;
    if (*p == '.') {
        int digits = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        if (digits == 0)
            return HUB_EINVAL;
        while (digits++ < 3)
            frac *= 10;
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 23 || om > 59)
            return HUB_EINVAL;
        off = (oh * 60 + om) * 60000LL * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return HUB_EINVAL;
    }
    if (*p)
        return HUB_EINVAL;
    *ms = ((int64_t)date * 86400 + h * 3600 + mi * 60 + sec) * 1000 + frac - off;
    return HUB_OK;
}

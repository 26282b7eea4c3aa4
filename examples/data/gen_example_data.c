/*
 * Writes the example data shipped in examples/data (see README.md there): a year of
 * Octopus-Agile-shaped half-hourly prices, two daily house load profiles, a daily 4 kWp PV
 * profile and a week of fleet power targets. Everything is synthetic and comes from one
 * splitmix64 stream seeded with SEED, so the files are the same on every machine:
 *
 *     build/examples/data/gen_example_data examples/data
 *
 * Prints a summary of the prices (mean, share of negative slots, mean by local hour) to
 * stderr. Plain C99 + libm; it is not installed and not run by the build.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEED      20260101u
#define YEAR_FROM 1767225600LL /* 2026-01-01T00:00:00Z */
#define YEAR_TO   1798761600LL /* 2027-01-01T00:00:00Z */
#define SLOT      1800
#define NSLOT     ((YEAR_TO - YEAR_FROM) / SLOT)

static uint64_t rng_state = SEED;

static uint64_t splitmix64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(void) /* [0, 1) */
{
    return (double)(splitmix64() >> 11) * 0x1.0p-53;
}

static double normal(void) /* Box-Muller */
{
    double u = uniform(), v = uniform();
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

static double clamp(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* ---- time ------------------------------------------------------------------------------ */

static void iso(long long t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* 01:00 UTC on the last Sunday of a month of 2026 (UK clock changes). */
static long long last_sunday_0100(int mon)
{
    struct tm tm = {.tm_year = 126, .tm_mon = mon + 1, .tm_mday = 1, .tm_hour = 1};
    long long first_next = (long long)timegm(&tm);
    gmtime_r(&(time_t){(time_t)first_next}, &tm);
    int back = tm.tm_wday == 0 ? 7 : tm.tm_wday; /* days back to the last Sunday before */
    return first_next - back * 86400LL;
}

/* UK local hour (with fraction) at Unix time t in 2026. */
static double uk_hour(long long t, long long bst_from, long long bst_to)
{
    long long local = t + (t >= bst_from && t < bst_to ? 3600 : 0);
    return (double)(local % 86400) / 3600.0;
}

/* ---- prices ---------------------------------------------------------------------------- */

/* Wholesale-like level by local hour, relative to the day's level. */
static double hour_shape(double h)
{
    static const double s[24] = {0.66, 0.62, 0.60, 0.58, 0.58, 0.62, 0.80, 1.00,
                                 1.12, 1.08, 1.00, 0.96, 0.94, 0.93, 0.96, 1.04,
                                 1.30, 1.42, 1.36, 1.18, 1.06, 0.94, 0.82, 0.72};
    int i = (int)h;
    double f = h - i;
    return s[i] + (s[(i + 1) % 24] - s[i]) * f;
}

typedef struct price {
    double imp, exp; /* pence/kWh inc VAT, after rounding exc VAT to 0.01 */
} price;

static double vat_round(double inc) /* inc VAT -> exc VAT rounded to 0.01 p */
{
    return round(inc / 1.05 * 100.0) / 100.0;
}

static void make_prices(price *p, long long bst_from, long long bst_to)
{
    double wind_z = 0, sun_z = 0, wind = 0.5, sun = 0.5, drift = 0;
    for (long long i = 0; i < NSLOT; i++) {
        long long t = YEAR_FROM + i * SLOT;
        if (i % 48 == 0) { /* a new UTC day: persistent weather */
            wind_z = 0.7 * wind_z + sqrt(1 - 0.49) * normal();
            sun_z = 0.5 * sun_z + sqrt(1 - 0.25) * normal();
            wind = clamp(0.45 + 0.3 * wind_z, 0, 1);
            sun = clamp(0.5 + 0.3 * sun_z, 0, 1);
        }
        double doy = (double)(t - YEAR_FROM) / 86400.0;
        double winter = 0.5 * (1 + cos(2 * M_PI * (doy - 15) / 365.0)); /* 1 mid-January */
        double summer = 1 - winter;
        double h = uk_hour(t + SLOT / 2, bst_from, bst_to);
        drift = 0.9 * drift + 0.45 * normal(); /* slot-to-slot wobble, pence */

        double level = 17.0 + 7.0 * winter;                /* seasonal level */
        double v = level * hour_shape(h);                  /* daily shape */
        if (h >= 16 && h < 19) v += 12.6;                  /* Agile's peak adder (12p + VAT) */
        double night = h < 7 || h >= 22 ? 1.0 : 0.6;       /* wind depresses nights most */
        v -= 12.5 * wind * wind * night;                   /* windy days are cheap */
        double dip = exp(-0.5 * pow((h - 13.0) / 2.2, 2)); /* solar dip around 13:00 local */
        v -= 17.0 * sun * (0.2 + 0.8 * summer) * dip;
        v += drift;
        if (v < 0) v *= 1.7;       /* surplus hours fall steeply */
        v = clamp(v, -10.0, 95.0); /* Agile's floor/cap region */
        double exc = vat_round(v);
        p[i].imp = exc * 1.05;
        double e = v < 0 ? 0.5 * v : fmin(v, 0.5 * v + 1.0); /* Agile-Outgoing-like */
        p[i].exp = vat_round(e) * 1.05;
    }
}

/* Shortest decimal text of x with at most 4 decimals. */
static void num(char *buf, size_t len, double x)
{
    snprintf(buf, len, "%.4f", fabs(x) < 5e-5 ? 0.0 : x);
    char *dot = strchr(buf, '.');
    if (!dot) return;
    char *e = buf + strlen(buf) - 1;
    while (e > dot && *e == '0')
        *e-- = '\0';
    if (e == dot) *e = '\0';
}

static void write_results(FILE *f, const price *p, int exp)
{
    for (long long i = NSLOT - 1; i >= 0; i--) { /* newest first, as Octopus lists them */
        long long t = YEAR_FROM + i * SLOT;
        char from[32], to[32], a[32], b[32];
        iso(t, from, sizeof from);
        iso(t + SLOT, to, sizeof to);
        double inc = exp ? p[i].exp : p[i].imp;
        num(a, sizeof a, round(inc / 1.05 * 100.0) / 100.0);
        num(b, sizeof b, inc);
        fprintf(f,
                "{\"value_exc_vat\":%s,\"value_inc_vat\":%s,\"valid_from\":\"%s\","
                "\"valid_to\":\"%s\"}%s\n",
                a, b, from, to, i ? "," : "");
    }
}

static void prices_summary(const price *p, long long bst_from, long long bst_to)
{
    double sum = 0, hsum[24] = {0}, mn = 1e9, mx = -1e9, esum = 0;
    int hn[24] = {0}, neg = 0, eneg = 0, neg_day = 0;
    double month[12] = {0};
    int mn_n[12] = {0};
    for (long long i = 0; i < NSLOT; i++) {
        long long t = YEAR_FROM + i * SLOT;
        double v = p[i].imp;
        sum += v;
        esum += p[i].exp;
        mn = fmin(mn, v);
        mx = fmax(mx, v);
        neg += v < 0;
        eneg += p[i].exp < 0;
        double h = uk_hour(t, bst_from, bst_to);
        if (v < 0 && h >= 10 && h < 17) neg_day++;
        hsum[(int)h] += v;
        hn[(int)h]++;
        struct tm tm;
        gmtime_r(&(time_t){(time_t)t}, &tm);
        month[tm.tm_mon] += v;
        mn_n[tm.tm_mon]++;
    }
    fprintf(stderr,
            "prices: %lld slots, import mean %.2f p (min %.2f, max %.2f), export mean %.2f p; "
            "%d negative import slots (%.2f %%, %d of them 10-17 local), %d negative export\n",
            (long long)NSLOT, sum / NSLOT, mn, mx, esum / NSLOT, neg, 100.0 * neg / NSLOT, neg_day,
            eneg);
    fprintf(stderr, "mean by UK local hour:");
    for (int h = 0; h < 24; h++)
        fprintf(stderr, " %02d:%.1f", h, hsum[h] / hn[h]);
    fprintf(stderr, "\nmean by month:");
    for (int m = 0; m < 12; m++)
        fprintf(stderr, " %.1f", month[m] / mn_n[m]);
    fprintf(stderr, "\n");
}

/* ---- daily profiles -------------------------------------------------------------------- */

/* A bump centred at c hours (UTC) of width s hours, wrapping around midnight. */
static double bump(double h, double c, double s)
{
    double d = fabs(h - c);
    if (d > 12) d = 24 - d;
    return exp(-0.5 * (d / s) * (d / s));
}

typedef struct load_shape {
    double base, morning, midday, evening; /* W */
    double evening_at, evening_width;      /* h UTC */
} load_shape;

static double write_load(const char *path, const load_shape *s)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "time,load_w\n");
    double wh = 0;
    for (int k = 0; k < 48; k++) {
        double h = k / 2.0;
        double w = s->base + s->morning * bump(h, 7.5, 1.0) + s->midday * bump(h, 12.5, 2.0) +
                   s->evening * bump(h, s->evening_at, s->evening_width);
        w *= 1 + 0.06 * (uniform() - 0.5); /* a little irregularity */
        w = round(w);
        wh += w * 0.5;
        fprintf(f, "%02d:%02d,%.0f\n", k / 2, k % 2 * 30, w);
    }
    fclose(f);
    return wh;
}

static double write_pv(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "time,pv_w\n");
    double wh = 0;
    for (int k = 0; k < 48; k++) {
        double h = k / 2.0, w = 0;
        if (h > 5.5 && h < 18.5) w = round(2800 * pow(sin(M_PI * (h - 5.5) / 13.0), 4));
        wh += w * 0.5;
        fprintf(f, "%02d:%02d,%.0f\n", k / 2, k % 2 * 30, w);
    }
    fclose(f);
    return wh;
}

/* ---- fleet target ---------------------------------------------------------------------- */

/* A week of a grid operator's requests to a fleet of ten 5 kW / 13.5 kWh batteries, in
 * 1-hour blocks: charge 00-05, discharge 07-09, charge 12-15, discharge 16-19 (UTC, which is
 * UK time in January). Each day's evening request D is drawn from 10..20 kW; the other
 * blocks are sized so that a day's energy balances at 95 % one-way efficiency. */
static int write_target(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "start,stop,target_w\n");
    const double eta2 = 0.95 * 0.95;
    for (int day = 0; day < 7; day++) {
        double d = 10000 + 500 * floor(uniform() * 21); /* 10..20 kW in 0.5 kW steps */
        double morning = round(0.4 * d / 500) * 500;
        double night = -round(3 * d / 5 / eta2 / 500) * 500;
        double midday = -round(2 * morning / 3 / eta2 / 500) * 500;
        for (int h = 0; h < 24; h++) {
            double w = h < 5               ? night
                       : h >= 7 && h < 9   ? morning
                       : h >= 12 && h < 15 ? midday
                       : h >= 16 && h < 19 ? d
                                           : 0;
            long long t = YEAR_FROM + (day * 24LL + h) * 3600;
            char a[32], b[32];
            iso(t, a, sizeof a);
            iso(t + 3600, b, sizeof b);
            fprintf(f, "%s,%s,%.0f\n", a, b, w);
        }
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char path[4096];
    long long bst_from = last_sunday_0100(2), bst_to = last_sunday_0100(9);

    price *p = calloc((size_t)NSLOT, sizeof *p);
    if (!p) return 1;
    make_prices(p, bst_from, bst_to);
    snprintf(path, sizeof path, "%s/octopus_2026.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    /* One slot a line, otherwise as compact as the Octopus API writes it. */
    fprintf(f, "{\"count\":%lld,\n\"results\":[\n", (long long)NSLOT);
    write_results(f, p, 0);
    fprintf(f, "],\n\"export_results\":[\n");
    write_results(f, p, 1);
    fprintf(f, "]}\n");
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    prices_summary(p, bst_from, bst_to);
    free(p);

    /* Profiles use their own stream position after the prices: fixed by the seed too. */
    const load_shape house = {200, 550, 150, 750, 18.5, 1.7};
    const load_shape evening = {250, 500, 150, 2200, 18.0, 1.3};
    snprintf(path, sizeof path, "%s/house_load.csv", dir);
    double a = write_load(path, &house);
    snprintf(path, sizeof path, "%s/house_load_evening.csv", dir);
    double b = write_load(path, &evening);
    snprintf(path, sizeof path, "%s/pv_4kwp.csv", dir);
    double c = write_pv(path);
    snprintf(path, sizeof path, "%s/fleet_target.csv", dir);
    int d = write_target(path);
    if (a < 0 || b < 0 || c < 0 || d < 0) {
        perror(dir);
        return 1;
    }
    fprintf(stderr,
            "house_load %.2f kWh/day, house_load_evening %.2f kWh/day, pv_4kwp %.2f kWh/day "
            "(sums of the 30-min points)\n",
            a / 1000, b / 1000, c / 1000);
    return 0;
}

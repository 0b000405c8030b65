/* A small hiredis client that test_client_hiredis.py runs against the broker.
 *
 *   respq-hiredis-client <port> basic
 *   respq-hiredis-client <port> pipeline <n>
 *   respq-hiredis-client <port> binary
 *   respq-hiredis-client <port> blocking
 *
 * Every reply is printed on its own line in a canonical form (status:OK, integer:3,
 * string:<bytes, non-printables as \xHH>, nil, error:<text>, array[n](a,b)) so the
 * Python side can compare exactly. Checks that are easier to do here (byte-exact
 * comparisons) print "check ok <what>" or "check FAILED <what>" and set exit code 1.
 * Exit code 2: cannot connect or the connection broke.
 */
#define _POSIX_C_SOURCE 200809L
#include <hiredis/hiredis.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures = 0;

static void print_escaped(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != ',' && c != '(' && c != ')')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
}

static void describe(const redisReply *r) {
    switch (r->type) {
    case REDIS_REPLY_STATUS:
        printf("status:");
        print_escaped(r->str, (size_t)r->len);
        break;
    case REDIS_REPLY_ERROR:
        printf("error:");
        print_escaped(r->str, (size_t)r->len);
        break;
    case REDIS_REPLY_INTEGER:
        printf("integer:%lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        printf("nil");
        break;
    case REDIS_REPLY_STRING:
        printf("string:");
        print_escaped(r->str, (size_t)r->len);
        break;
    case REDIS_REPLY_ARRAY:
        printf("array[%zu](", r->elements);
        for (size_t i = 0; i < r->elements; i++) {
            if (i)
                putchar(',');
            describe(r->element[i]);
        }
        putchar(')');
        break;
    default:
        printf("unknown-type:%d", r->type);
    }
}

static void print_reply(const char *label, redisReply *r) {
    printf("%s ", label);
    describe(r);
    putchar('\n');
    fflush(stdout);
}

static redisContext *connect_or_die(int port) {
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "connect: %s\n", c ? c->errstr : "out of memory");
        exit(2);
    }
    return c;
}

static redisReply *expect_reply(redisContext *c, redisReply *r) {
    if (r == NULL) {
        fprintf(stderr, "connection error: %s\n", c->errstr);
        exit(2);
    }
    return r;
}

static redisReply *get_reply(redisContext *c) {
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK || r == NULL) {
        fprintf(stderr, "redisGetReply: %s\n", c->errstr);
        exit(2);
    }
    return (redisReply *)r;
}

static void command(redisContext *c, const char *label, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = expect_reply(c, redisvCommand(c, fmt, ap));
    va_end(ap);
    print_reply(label, r);
    freeReplyObject(r);
}

static void check(int ok, const char *what) {
    printf("check %s %s\n", ok ? "ok" : "FAILED", what);
    fflush(stdout);
    if (!ok)
        failures++;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Plain synchronous commands and the error replies a C client sees. */
static void run_basic(int port) {
    redisContext *c = connect_or_die(port);
    command(c, "ping", "PING");
    command(c, "echo", "ECHO %s", "hello hiredis");
    command(c, "del", "DEL hiredis:basic");
    command(c, "rpush", "RPUSH hiredis:basic a b c");
    command(c, "lrange", "LRANGE hiredis:basic 0 -1");
    command(c, "lpop-missing", "LPOP hiredis:missing");
    command(c, "lpop-count-missing", "LPOP hiredis:missing 2");
    command(c, "lpop-count", "LPOP hiredis:basic 2");
    command(c, "unknown", "NOSUCHCOMMAND x y");
    command(c, "arity", "LPUSH hiredis:basic");
    command(c, "client-setname", "CLIENT SETNAME hiredis-app");
    command(c, "client-getname", "CLIENT GETNAME");
    command(c, "llen", "LLEN hiredis:basic");
    redisFree(c);
}

/* N commands appended, then N replies read: one write, replies in order. */
static void run_pipeline(int port, int n) {
    redisContext *c = connect_or_die(port);
    redisAppendCommand(c, "DEL hiredis:pipe");
    for (int i = 0; i < n; i++)
        redisAppendCommand(c, "RPUSH hiredis:pipe item-%d", i);
    redisAppendCommand(c, "LLEN hiredis:pipe");
    redisAppendCommand(c, "LINDEX hiredis:pipe 0");
    redisAppendCommand(c, "LINDEX hiredis:pipe -1");
    redisAppendCommand(c, "LRANGE hiredis:pipe 0 2");
    int total = n + 5, in_order = 1;
    for (int i = 0; i < total; i++) {
        redisReply *r = get_reply(c);
        if (i >= 1 && i <= n) {
            if (r->type != REDIS_REPLY_INTEGER || r->integer != i) {
                print_reply("unexpected-rpush-reply", r);
                in_order = 0;
            }
        } else {
            char label[32];
            snprintf(label, sizeof label, "reply-%d", i);
            print_reply(i == 0 ? "del" : label, r);
        }
        freeReplyObject(r);
    }
    check(in_order, "pipelined RPUSH replies count 1..n in order");
    redisFree(c);
}

/* Values (and a key) with NUL, CR, LF and RESP framing bytes come back byte for byte. */
static void run_binary(int port) {
    redisContext *c = connect_or_die(port);
    static const char key[] = "hiredis:bin\0key\r\n";
    const size_t keylen = sizeof key - 1;
    char all_bytes[256];
    for (int i = 0; i < 256; i++)
        all_bytes[i] = (char)i;
    size_t big_len = 1u << 20;
    char *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)((i * 31u + 7u) & 0xff);
    struct {
        const char *p;
        size_t len;
    } values[] = {
        {"\0", 1},
        {"a\r\nb", 4},
        {"*1\r\n$4\r\nPING\r\n", 14},
        {"", 0},
        {all_bytes, 256},
        {big, big_len},
    };
    const size_t nvalues = sizeof values / sizeof values[0];

    redisReply *r = expect_reply(c, redisCommand(c, "DEL %b", key, keylen));
    freeReplyObject(r);
    for (size_t i = 0; i < nvalues; i++) {
        r = expect_reply(c, redisCommand(c, "RPUSH %b %b", key, keylen, values[i].p, values[i].len));
        char label[32];
        snprintf(label, sizeof label, "rpush-%zu", i);
        print_reply(label, r);
        freeReplyObject(r);
    }
    r = expect_reply(c, redisCommand(c, "LRANGE %b 0 -1", key, keylen));
    int same = r->type == REDIS_REPLY_ARRAY && r->elements == nvalues;
    for (size_t i = 0; same && i < nvalues; i++) {
        const redisReply *e = r->element[i];
        same = e->type == REDIS_REPLY_STRING && (size_t)e->len == values[i].len &&
               memcmp(e->str, values[i].p, values[i].len) == 0;
    }
    check(same, "LRANGE returns every binary value byte for byte");
    if (r->type == REDIS_REPLY_ARRAY && r->elements == nvalues) {
        r->element[nvalues - 1]->len = 0; /* don't print the 1 MB value */
        print_reply("lrange-without-big", r);
    }
    freeReplyObject(r);
    r = expect_reply(c, redisCommand(c, "LINDEX %b 1", key, keylen));
    print_reply("lindex-1", r);
    freeReplyObject(r);
    r = expect_reply(c, redisCommand(c, "EXISTS %b", key, keylen));
    print_reply("exists-binary-key", r);
    freeReplyObject(r);
    r = expect_reply(c, redisCommand(c, "EXISTS %s", "hiredis:bin"));
    print_reply("exists-truncated-key", r);
    freeReplyObject(r);
    command(c, "ping-after", "PING");
    r = expect_reply(c, redisCommand(c, "DEL %b", key, keylen));
    print_reply("del", r);
    freeReplyObject(r);
    free(big);
    redisFree(c);
}

static long blocked_clients(redisContext *c) {
    redisReply *r = expect_reply(c, redisCommand(c, "INFO clients"));
    long n = -1;
    if (r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, "blocked_clients:");
        if (p)
            n = strtol(p + strlen("blocked_clients:"), NULL, 10);
    }
    freeReplyObject(r);
    return n;
}

static void wait_blocked(redisContext *c, long n) {
    double deadline = now() + 10.0;
    while (blocked_clients(c) != n) {
        if (now() > deadline) {
            check(0, "blocked_clients reached the expected count");
            exit(1);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* BRPOP on one connection, served by LPUSH on another; a command pipelined behind the
 * BRPOP is answered only after it. Then a fractional timeout that expires. */
static void run_blocking(int port) {
    redisContext *waiter = connect_or_die(port);
    redisContext *producer = connect_or_die(port);
    command(producer, "del", "DEL hiredis:blk");
    redisAppendCommand(waiter, "BRPOP hiredis:blk 10");
    redisAppendCommand(waiter, "ECHO after-brpop");
    int done = 0;
    while (!done) {
        if (redisBufferWrite(waiter, &done) != REDIS_OK) {
            fprintf(stderr, "write: %s\n", waiter->errstr);
            exit(2);
        }
    }
    double t0 = now();
    wait_blocked(producer, 1);
    command(producer, "lpush", "LPUSH hiredis:blk served-value");
    redisReply *r = get_reply(waiter);
    double waited = now() - t0;
    print_reply("brpop", r);
    freeReplyObject(r);
    r = get_reply(waiter);
    print_reply("pipelined-after-brpop", r);
    freeReplyObject(r);
    check(waited < 9.0, "BRPOP was served by the push, not by its timeout");
    command(producer, "llen-after", "LLEN hiredis:blk");

    t0 = now();
    command(waiter, "brpop-timeout", "BRPOP hiredis:blk 0.2");
    waited = now() - t0;
    check(waited >= 0.15 && waited < 5.0, "BRPOP 0.2 timed out after about 0.2 s");
    command(producer, "rpush", "RPUSH hiredis:blk x y");
    command(waiter, "blpop-ready", "BLPOP hiredis:none hiredis:blk 1");
    redisFree(waiter);
    redisFree(producer);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <port> basic|pipeline <n>|binary|blocking\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    const char *mode = argv[2];
    if (strcmp(mode, "basic") == 0)
        run_basic(port);
    else if (strcmp(mode, "pipeline") == 0)
        run_pipeline(port, argc > 3 ? atoi(argv[3]) : 1000);
    else if (strcmp(mode, "binary") == 0)
        run_binary(port);
    else if (strcmp(mode, "blocking") == 0)
        run_blocking(port);
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return failures ? 1 : 0;
}

/*
 * sks_card_daemon.c - sks-card, the SKS card as a daemon: one card state
 * directory served to pcscd through vsmartcard's vpcd reader driver, so that
 * any PC/SC application (the sks-pkcs11 module with transport = pcsc,
 * opensc-tool, ...) sees it as a card in the reader "Virtual PCD 00 00".
 *
 * This file is the program around the protocol logic of vpcd_link.c:
 * options, the card, logging to stderr or syslog, daemonizing with a pid
 * file, and a clean stop on SIGTERM, SIGINT or SIGHUP.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "card/sks_card.h"
#include "tools/tool_common.h"
#include "tools/tool_paths.h"
#include "tools/vpcd_link.h"

static const char *prog = "sks-card";

/* ---- Options ------------------------------------------------------------ */

typedef struct {
    const char *state_dir;
    int init;
    const char *host;
    const char *port;
    int foreground;
    const char *pid_file;
    int log_level;
    int once;
} options;

enum long_only {
    OPT_INIT = 256,
    OPT_HOST,
    OPT_PORT,
    OPT_PID_FILE,
    OPT_LOG_LEVEL,
    OPT_ONCE,
};

static const struct option long_options[] = {
    {"state-dir", required_argument, NULL, 'd'},
    {"init", no_argument, NULL, OPT_INIT},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"foreground", no_argument, NULL, 'f'},
    {"pid-file", required_argument, NULL, OPT_PID_FILE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"once", no_argument, NULL, OPT_ONCE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s [OPTIONS]\n"
            "Serve an SKS card kept in a state directory to pcscd through the vpcd\n"
            "reader driver (vsmartcard).\n"
            "\n"
            "%s"
            "      --init               create a card in DIR first if it holds none\n"
            "      --host HOST          vpcd's address (default %s)\n"
            "      --port PORT          vpcd's port (default %s: reader \"Virtual PCD 00 00\";\n"
            "                           35964 is \"Virtual PCD 00 01\")\n"
            "  -f, --foreground         stay in the foreground and log to stderr\n"
            "                           (default: run as a daemon and log to syslog)\n"
            "      --pid-file FILE      write the daemon's PID to FILE, removed at exit\n"
            "      --log-level LEVEL    error, warn, info (default) or debug\n"
            "      --once               exit when the first connection to the reader ends\n"
            "  -h, --help               show this help and exit\n"
            "  -V, --version            show the version and exit\n"
            "\n"
            "SIGTERM, SIGINT and SIGHUP stop it cleanly. Exit status: 0 stopped,\n"
            "1 failure, 2 usage error.\n",
            prog, TOOL_STATE_DIR_HELP, VPCD_DEFAULT_HOST, VPCD_DEFAULT_PORT);
}

static int usage_error(const char *msg, const char *arg)
{
    return tool_usage_error(prog, msg, arg);
}

static int parse_log_level(const char *s, int *level)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *level = i; /* the order of enum vpcd_log_level */
            return 0;
        }
    }
    return -1;
}

static int parse_port(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || s[0] == '+' || v < 1 || v > 65535)
        return -1;
    return 0;
}

/* Returns -1 to go on, else the exit status (help, version, usage error). */
static int parse_options(int argc, char **argv, options *o)
{
    int opt;
    memset(o, 0, sizeof(*o));
    o->host = VPCD_DEFAULT_HOST;
    o->port = VPCD_DEFAULT_PORT;
    o->log_level = VPCD_LOG_INFO;
    while ((opt = getopt_long(argc, argv, "d:fhV", long_options, NULL)) != -1) {
        switch (opt) {
        case 'd':
            if (optarg[0] == '\0')
                return usage_error("--state-dir needs a directory", NULL);
            o->state_dir = optarg;
            break;
        case OPT_INIT:
            o->init = 1;
            break;
        case OPT_HOST:
            if (optarg[0] == '\0')
                return usage_error("--host needs an address", NULL);
            o->host = optarg;
            break;
        case OPT_PORT:
            if (parse_port(optarg) != 0)
                return usage_error("--port must be a number from 1 to 65535", optarg);
            o->port = optarg;
            break;
        case 'f':
            o->foreground = 1;
            break;
        case OPT_PID_FILE:
            if (optarg[0] == '\0')
                return usage_error("--pid-file needs a file name", NULL);
            o->pid_file = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (parse_log_level(optarg, &o->log_level) != 0)
                return usage_error("--log-level must be error, warn, info or debug", optarg);
            break;
        case OPT_ONCE:
            o->once = 1;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            return tool_print_version(prog);
        default:
            return usage_error("invalid command line", NULL);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    return -1;
}

/* ---- Logging ------------------------------------------------------------ */

static int log_to_syslog;
static int log_max_level = VPCD_LOG_INFO;

__attribute__((format(printf, 3, 0))) static void log_line(void *ctx, int level, const char *fmt,
                                                           va_list ap)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    static const int priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    (void)ctx;
    if (level < VPCD_LOG_ERROR || level > VPCD_LOG_DEBUG || level > log_max_level)
        return;
    if (log_to_syslog) {
        vsyslog(priorities[level], fmt, ap);
        return;
    }
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "%s: %s: %s\n", prog, names[level], line);
}

__attribute__((format(printf, 2, 3))) static void say(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(NULL, level, fmt, ap);
    va_end(ap);
}

/* ---- Signals -------------------------------------------------------------- */

static atomic_int stop_flag;
static atomic_int stop_signal;

static void on_stop_signal(int sig)
{
    atomic_store(&stop_signal, sig);
    atomic_store(&stop_flag, 1);
}

/*
 * The stop signals are blocked except while the link waits (ppoll with
 * `wait_mask`): an APDU being processed is always finished, and a signal that
 * arrives between two waits is taken by the next one.
 */
static int setup_signals(sigset_t *wait_mask)
{
    static const int stops[] = {SIGTERM, SIGINT, SIGHUP};
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    sigemptyset(&block);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a wait returns EINTR */
    for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
        sigaddset(&block, stops[i]);
        if (sigaction(stops[i], &sa, NULL) != 0)
            return -1;
    }
    if (sigprocmask(SIG_BLOCK, &block, wait_mask) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
        sigdelset(wait_mask, stops[i]);
    return 0;
}

/* ---- Files ---------------------------------------------------------------- */

/* `path` as an absolute path (malloc'ed): the daemon changes to "/". */
static char *absolute_path(const char *path)
{
    char cwd[PATH_MAX];
    if (path[0] == '/')
        return strdup(path);
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    size_t n = strlen(cwd) + 1 + strlen(path) + 1;
    char *abs = malloc(n);
    if (abs != NULL)
        snprintf(abs, n, "%s/%s", cwd, path);
    return abs;
}

/*
 * Create and lock the pid file; the lock (held until exit) tells a second
 * daemon that this one is running. Returns the open file or -1.
 */
static int pid_file_create(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        say(VPCD_LOG_ERROR, "cannot create the pid file %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        say(VPCD_LOG_ERROR, "%s is locked: another sks-card is running", path);
        close(fd);
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, buf, (size_t)n) != n) {
        say(VPCD_LOG_ERROR, "cannot write the pid file %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

/* ---- Daemon ----------------------------------------------------------------- */

/*
 * Close every descriptor a daemon must not keep from whoever started it
 * (a lock, the write end of someone's pipe) except stdio and `keep`.
 */
static void close_inherited(int keep)
{
    DIR *d = opendir("/proc/self/fd");
    int fds[256], n = 0;
    struct dirent *e;
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL && n < 256) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end == '\0' && end != e->d_name && fd > STDERR_FILENO && fd != keep && fd != dirfd(d))
            fds[n++] = (int)fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/*
 * Detach: fork twice (the daemon is no session leader, so it never gets a
 * controlling terminal) with a pipe back to the original process, which
 * waits until the daemon reports that it serves the card (exit 0) or dies
 * (exit 1; the daemon has printed why on the still inherited stderr).
 * Returns the write end of the pipe in the daemon; does not return in the
 * original process.
 */
static int daemonize(void)
{
    int ready[2];
    if (pipe(ready) != 0) {
        say(VPCD_LOG_ERROR, "pipe: %s", strerror(errno));
        exit(EXIT_FAIL);
    }
    pid_t pid = fork();
    if (pid < 0) {
        say(VPCD_LOG_ERROR, "fork: %s", strerror(errno));
        exit(EXIT_FAIL);
    }
    if (pid > 0) {
        char c = 0;
        close(ready[1]);
        ssize_t n;
        do
            n = read(ready[0], &c, 1);
        while (n < 0 && errno == EINTR);
        waitpid(pid, NULL, 0); /* the intermediate process, gone at once */
        _exit(n == 1 && c == '0' ? EXIT_OK : EXIT_FAIL);
    }
    close(ready[0]);
    if (setsid() < 0)
        _exit(EXIT_FAIL);
    pid = fork();
    if (pid < 0)
        _exit(EXIT_FAIL);
    if (pid > 0)
        _exit(EXIT_OK);
    umask(022);
    close_inherited(ready[1]);
    return ready[1];
}

/* Tell the waiting parent that the daemon runs, and leave the terminal. */
static void detach_done(int ready_fd)
{
    int null = open("/dev/null", O_RDWR);
    openlog(prog, LOG_PID, LOG_DAEMON);
    log_to_syslog = 1;
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    if (chdir("/") != 0)
        say(VPCD_LOG_WARN, "chdir /: %s", strerror(errno));
    if (write(ready_fd, "0", 1) != 1)
        say(VPCD_LOG_WARN, "cannot report readiness: %s", strerror(errno));
    close(ready_fd);
}

/* Open the card (creating it first with --init), logging why it failed. */
static sks_card *open_card(const char *dir, int init)
{
    char err[256];
    if (!tool_has_card(dir)) {
        if (!init) {
            say(VPCD_LOG_ERROR, "no card in %s (--init creates one)", dir);
            return NULL;
        }
        if (sks_card_init_state(dir, NULL, err, sizeof(err)) != 0) {
            say(VPCD_LOG_ERROR, "cannot create a card in %s: %s", dir, err);
            return NULL;
        }
        say(VPCD_LOG_INFO, "created a new card in %s", dir);
    }
    sks_card *card = sks_card_open(dir, err, sizeof(err));
    if (card == NULL)
        say(VPCD_LOG_ERROR, "cannot open the card in %s: %s", dir, err);
    return card;
}

int main(int argc, char **argv)
{
    options o;
    sigset_t wait_mask;
    char *state_dir = NULL, *pid_path = NULL;
    int ready_fd = -1, pid_fd = -1, rc = EXIT_FAIL;
    sks_card *card = NULL;

    rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    rc = EXIT_FAIL;
    log_max_level = o.log_level;

    if (o.state_dir != NULL) {
        state_dir = absolute_path(o.state_dir);
    } else {
        state_dir = tool_default_state_dir();
        if (state_dir == NULL) {
            say(VPCD_LOG_ERROR, "no state directory: set HOME or use --state-dir");
            return EXIT_FAIL;
        }
    }
    if (o.pid_file != NULL)
        pid_path = absolute_path(o.pid_file);
    if (state_dir == NULL || (o.pid_file != NULL && pid_path == NULL)) {
        say(VPCD_LOG_ERROR, "cannot make the paths absolute: %s", strerror(errno));
        goto out;
    }
    if (setup_signals(&wait_mask) != 0) {
        say(VPCD_LOG_ERROR, "cannot set up signal handling: %s", strerror(errno));
        goto out;
    }
    if (!o.foreground)
        ready_fd = daemonize();
    card = open_card(state_dir, o.init);
    if (card == NULL)
        goto out;
    if (pid_path != NULL && (pid_fd = pid_file_create(pid_path)) < 0)
        goto out;

    vpcd_link link;
    vpcd_link_init(&link, card);
    link.host = o.host;
    link.port = o.port;
    link.once = o.once;
    link.stop = &stop_flag;
    link.wait_mask = &wait_mask;
    link.log = log_line;
    link.log_level = o.log_level;
    if (ready_fd >= 0) {
        detach_done(ready_fd);
        ready_fd = -1;
    }
    say(VPCD_LOG_INFO, "serving the card in %s to the vpcd reader at %s port %s", state_dir, o.host,
        o.port);
    if (vpcd_run(&link) == 0) {
        rc = EXIT_OK;
        if (atomic_load(&stop_signal) != 0)
            say(VPCD_LOG_INFO, "stopped by signal %d after %lu APDUs", atomic_load(&stop_signal),
                link.apdus);
        else
            say(VPCD_LOG_INFO, "the connection ended after %lu APDUs", link.apdus);
    }
out:
    /* Every change of the card was its own committed transaction. */
    sks_card_close(card);
    if (pid_fd >= 0) {
        unlink(pid_path);
        close(pid_fd);
    }
    if (ready_fd >= 0)
        close(ready_fd); /* the parent sees no '0' and exits 1 */
    free(state_dir);
    free(pid_path);
    return rc;
}

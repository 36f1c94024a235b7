/* The process-shared channel (see channel.h for the protocol and its guarantees). */
#ifndef _GNU_SOURCE
#  define _GNU_SOURCE 1 /* memfd_create; pyconfig.h defines it the same way */
#endif
#include "channel.h"

/* Linux only for now: memfd, process-shared futexes, robust mutexes. */
#ifdef __linux__

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __linux__
#  include <linux/futex.h>
#  include <sys/syscall.h>
#endif

#define HDR_SIZE 4096
#define FRAME_HDR 8
#define F_BEGIN 1u
#define F_END 2u
#define F_ABORT 4u
#define F_PAD 8u
#define SLICE_NS ((int64_t)50 * 1000000)
/* How often a bounded put past its deadline re-checks why the lock is held. */
#define LOCK_POLL_NS ((int64_t)1000000)
/* How long a wait spins (pause instructions, checking the word) before
 * sleeping on the futex: about as long as the other process takes to answer
 * when it runs on another core. No sched_yield(): on a busy machine it hands
 * the core to whatever else is runnable for a whole time slice (milliseconds,
 * measured: 3 ms per queue round trip with two CPU hogs), where sleeping on
 * the futex gets the waiter back as soon as it is woken. */
#ifndef SPIN_NS
#  define SPIN_NS 5000
#endif
#define CHAN_MAGIC 0x71636363u /* "cccq" */
#define CHAN_VERSION 3u
/* Copies larger than this run without the GIL. */
#define BIG_COPY ((size_t)256 * 1024)

struct cc_chan_shared {
    uint32_t magic, version;
    uint64_t capacity;
    uint32_t maxsize;
    pthread_mutex_t wlock; /* held by the one process writing the ring */
    pthread_mutex_t rlock; /* held by the one process reading it */
    /* written by the wlock holder */
    _Alignas(64) _Atomic uint64_t head; /* count << 32 | position */
    _Atomic uint32_t r_sleep;            /* the rlock holder sleeps on head (a sleep flag) */
    _Atomic uint32_t w_in_msg;           /* a long message is being written... */
    _Atomic uint64_t w_msg_start;        /* ...from this head word (see partly_published) */
    /* written by the rlock holder */
    _Alignas(64) _Atomic uint64_t tail;
    _Atomic uint32_t w_sleep;    /* the wlock holder sleeps on tail (a sleep flag) */
    _Atomic uint32_t room_sleep; /* processes sleep on tail without the wlock (a sleep flag) */
    /* JoinableQueue */
    _Alignas(64) _Atomic uint32_t done; /* messages marked task_done */
    _Atomic uint32_t j_sleep;           /* processes sleep in join() on done (a sleep flag) */
    /* Items whose put returned but that wait in their process's spill buffer
     * (cc_chan_put): counted by qsize, the bound and join. Changed only
     * under wlock; its own line, rarely written, so the hot paths' load of
     * it stays a cache hit. */
    _Alignas(64) _Atomic uint32_t spilled;
};

_Static_assert(sizeof(struct cc_chan_shared) <= HDR_SIZE, "channel header larger than its page");

typedef struct {
    uint32_t len; /* payload bytes */
    uint8_t flags;
    uint8_t tag;
    uint16_t unused;
} frame_hdr;

_Static_assert(sizeof(frame_hdr) == FRAME_HDR, "frame header size");

static inline uint32_t word_pos(uint64_t w) { return (uint32_t)w; }
static inline uint32_t word_count(uint64_t w) { return (uint32_t)(w >> 32); }
static inline uint64_t make_word(uint32_t pos, uint32_t count) { return ((uint64_t)count << 32) | pos; }
static inline size_t round8(size_t n) { return (n + 7) & ~(size_t)7; }

/* The 32-bit position half of head/tail: the futex word waiters sleep on. */
static inline uint32_t *pos_half(_Atomic uint64_t *w)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (uint32_t *)w + 1;
#else
    return (uint32_t *)w;
#endif
}

/* ------------------------------------------------------------ waiting */

/* Sleep flags. A process about to sleep on a futex word sets the word's
 * sleep flag, re-checks the word, then sleeps; the process that changes the
 * word clears the flag and, if it was set, wakes every sleeper (each sets
 * the flag again before sleeping again). So no system call is made when
 * nobody sleeps, and a sleeper that dies (SIGKILL) costs one needless wake-up
 * at most: a count of sleepers stayed raised forever after such a death,
 * and every later change of the word made a futex system call. */
static inline int take_sleepers(_Atomic uint32_t *flag)
{
    /* the load keeps the common case (nobody sleeps) free of a locked op */
    return atomic_load(flag) && atomic_exchange(flag, 0);
}

static void futex_wake_all(void *addr)
{
#ifdef __linux__
    syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

static int64_t slice_end(cc_deadline deadline)
{
    int64_t end = cc_monotonic_ns() + SLICE_NS;
    return deadline != CC_FOREVER && deadline < end ? deadline : end;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin briefly while *addr == expected: the other process is usually about
 * to move it, and catching that here saves both sides a futex round trip.
 * 1 when it moved. */
static int spin_until_changed(const void *addr, uint32_t expected)
{
    const _Atomic uint32_t *word = (const _Atomic uint32_t *)addr;
    int64_t end = 0;
    for (int i = 0;; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) != expected)
            return 1;
        if ((i & 15) == 15) { /* the clock every 16 rounds: a read costs tens of ns */
            int64_t now = cc_monotonic_ns();
            if (!end)
                end = now + SPIN_NS;
            else if (now >= end)
                return 0;
        }
        cpu_relax();
    }
}

/* Sleep while *addr == expected, at most one slice and not past `deadline`,
 * without the GIL; then run the signal handlers. 0, or -1 if one raised. */
static int wait_slice(void *addr, uint32_t expected, cc_deadline deadline)
{
    int64_t end = slice_end(deadline);
    struct timespec ts = {(time_t)(end / 1000000000), (long)(end % 1000000000)};
    Py_BEGIN_ALLOW_THREADS
#ifdef __linux__
    /* Not FUTEX_PRIVATE: the word is shared with other processes. Absolute
     * CLOCK_MONOTONIC time; EINTR, EAGAIN and ETIMEDOUT all just return. */
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, &ts, NULL, FUTEX_BITSET_MATCH_ANY);
#else
    (void)addr, (void)expected;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
#endif
    Py_END_ALLOW_THREADS
    return PyErr_CheckSignals();
}

/* Take a robust mutex before `deadline`, in slices so that Ctrl-C gets
 * through. *died is set when its previous owner died holding it: the caller
 * repairs what it guards and calls pthread_mutex_consistent. */
static int lock_robust(pthread_mutex_t *m, cc_deadline deadline, int *died)
{
    *died = 0;
    int r = pthread_mutex_trylock(m);
    while (r == EBUSY) {
        if (cc_deadline_passed(deadline))
            return CC_CHAN_TIMEOUT;
        int64_t end = slice_end(deadline);
        struct timespec ts;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
        ts.tv_sec = (time_t)(end / 1000000000);
        ts.tv_nsec = (long)(end % 1000000000);
        Py_BEGIN_ALLOW_THREADS
        r = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
        Py_END_ALLOW_THREADS
#else
        if (cc_deadline_to_realtime(end, &ts) < 0)
            r = pthread_mutex_trylock(m);
        else {
            Py_BEGIN_ALLOW_THREADS
            r = pthread_mutex_timedlock(m, &ts);
            Py_END_ALLOW_THREADS
        }
#endif
        if (r == ETIMEDOUT || r == EBUSY) {
            if (PyErr_CheckSignals() < 0)
                return CC_CHAN_ERROR;
            r = EBUSY;
        }
    }
    if (r == 0)
        return CC_CHAN_OK;
    if (r == EOWNERDEAD) {
        *died = 1;
        return CC_CHAN_OK;
    }
    if (r == EDEADLK) {
        PyErr_SetString(PyExc_RuntimeError,
                        "re-entrant call: this thread is already inside a call on this queue");
        return CC_CHAN_ERROR;
    }
    errno = r;
    PyErr_SetFromErrno(PyExc_OSError);
    return CC_CHAN_ERROR;
}

/* ------------------------------------------------------------ setup */

static int init_robust_mutex(pthread_mutex_t *m)
{
    pthread_mutexattr_t attr;
    int r = pthread_mutexattr_init(&attr);
    if (r)
        return r;
    if (!(r = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) &&
        !(r = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)) &&
        /* error-checking: a re-entrant lock from the same thread fails
         * (EDEADLK, a RuntimeError) instead of hanging */
        !(r = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK)))
        r = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return r;
}

/* `size` bytes of the file behind fd, mapped shared: NULL with OSError. */
static void *map_shared(int fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED)
        return p;
    PyErr_SetFromErrno(PyExc_OSError);
    return NULL;
}

/* The size of the file behind fd, a process passed us, when it can be a
 * cconc `what` (at least min_size bytes); 0 with an exception otherwise. */
static size_t passed_size(int fd, size_t min_size, const char *what)
{
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return 0;
    }
    if ((size_t)sb.st_size < min_size) {
        PyErr_Format(PyExc_ValueError, "not a cconc %s", what);
        return 0;
    }
    return (size_t)sb.st_size;
}

static int map_fd(cc_chan *ch, int fd, size_t map_size)
{
    void *p = map_shared(fd, map_size);
    if (!p)
        return -1;
    ch->hdr = (struct cc_chan_shared *)p;
    ch->ring = (char *)p + HDR_SIZE;
    ch->map_size = map_size;
    ch->fd = fd;
    return 0;
}

/* A new shared-memory file of `size` bytes: its fd, or -1 with OSError.
 * memfd: anonymous, freed when the last process unmaps and closes it, so
 * nothing is left behind by a process that dies. */
static int new_shared_fd(const char *name, size_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        close(fd);
        return -1;
    }
    return fd;
}

int cc_chan_create(cc_chan *ch, size_t capacity, uint32_t maxsize)
{
    ch->hdr = NULL;
    ch->fd = -1;
    ch->bell = NULL;
    size_t cap = CC_CHAN_MIN_CAPACITY;
    if (capacity > CC_CHAN_MAX_CAPACITY) {
        PyErr_SetString(PyExc_ValueError, "buffer size too large");
        return -1;
    }
    while (cap < capacity)
        cap <<= 1;
    int fd = new_shared_fd("cconc-mp-queue", HDR_SIZE + cap);
    if (fd < 0)
        return -1;
    if (map_fd(ch, fd, HDR_SIZE + cap) < 0) {
        close(fd);
        ch->fd = -1;
        return -1;
    }
    struct cc_chan_shared *h = ch->hdr;
    h->capacity = cap;
    h->maxsize = maxsize;
    int r;
    if ((r = init_robust_mutex(&h->wlock)) || (r = init_robust_mutex(&h->rlock))) {
        errno = r;
        PyErr_SetFromErrno(PyExc_OSError);
        cc_chan_unmap(ch);
        cc_chan_close_fd(ch);
        return -1;
    }
    atomic_store(&h->head, 0);
    atomic_store(&h->tail, 0);
    h->version = CHAN_VERSION;
    h->magic = CHAN_MAGIC;
    ch->capacity = cap;
    return 0;
}

int cc_chan_attach(cc_chan *ch, int fd)
{
    ch->hdr = NULL;
    ch->fd = -1;
    ch->bell = NULL;
    size_t size = passed_size(fd, HDR_SIZE + CC_CHAN_MIN_CAPACITY, "queue");
    if (!size || map_fd(ch, fd, size) < 0) {
        close(fd);
        return -1;
    }
    struct cc_chan_shared *h = ch->hdr;
    if (h->magic != CHAN_MAGIC || h->version != CHAN_VERSION || h->capacity + HDR_SIZE != ch->map_size) {
        PyErr_SetString(PyExc_ValueError, "not a cconc queue");
        cc_chan_unmap(ch);
        cc_chan_close_fd(ch);
        return -1;
    }
    ch->capacity = h->capacity;
    return 0;
}

void cc_chan_close_fd(cc_chan *ch)
{
    if (ch->fd >= 0) {
        close(ch->fd);
        ch->fd = -1;
    }
}

void cc_chan_unmap(cc_chan *ch)
{
    if (ch->hdr) {
        munmap(ch->hdr, ch->map_size);
        ch->hdr = NULL;
        ch->ring = NULL;
    }
}

uint32_t cc_chan_maxsize(const cc_chan *ch) { return ch->hdr->maxsize; }

int cc_chan_has_frames(const cc_chan *ch)
{
    return word_pos(atomic_load(&ch->hdr->head)) != word_pos(atomic_load(&ch->hdr->tail));
}

uint32_t cc_chan_count(const cc_chan *ch)
{
    /* spilled before head: a feeder stores head then lowers spilled, so
     * this order may count an item twice for an instant, never zero times */
    uint32_t spilled = atomic_load(&ch->hdr->spilled);
    uint64_t t = atomic_load(&ch->hdr->tail);
    uint64_t h = atomic_load(&ch->hdr->head);
    return word_count(h) - word_count(t) + spilled;
}

/* For diagnosis (a wedged queue's state; tests that wait for a process to
 * block): the shared header, the ring's bytes and the robust locks' words
 * (glibc's layout: owner tid | FUTEX_WAITERS | FUTEX_OWNER_DIED). */
PyObject *cc_chan_debug_state(const cc_chan *ch)
{
    struct cc_chan_shared *h = ch->hdr;
    uint64_t head = atomic_load(&h->head), tail = atomic_load(&h->tail);
#ifdef __GLIBC__
    int wlock_word = h->wlock.__data.__lock, wlock_owner = h->wlock.__data.__owner;
    int rlock_word = h->rlock.__data.__lock, rlock_owner = h->rlock.__data.__owner;
#else
    int wlock_word = -1, wlock_owner = -1, rlock_word = -1, rlock_owner = -1;
#endif
    return Py_BuildValue("{sy#sksksksksIsIsIsKsIsIsIsIsisisisi}", "ring", ch->ring, (Py_ssize_t)ch->capacity,
                         "head_pos", (unsigned long)word_pos(head), "head_count", (unsigned long)word_count(head),
                         "tail_pos", (unsigned long)word_pos(tail), "tail_count", (unsigned long)word_count(tail),
                         "r_sleep", (unsigned)atomic_load(&h->r_sleep), "w_sleep", (unsigned)atomic_load(&h->w_sleep),
                         "w_in_msg", (unsigned)atomic_load(&h->w_in_msg), "w_msg_start",
                         (unsigned long long)atomic_load(&h->w_msg_start), "room_sleep",
                         (unsigned)atomic_load(&h->room_sleep), "spilled", (unsigned)atomic_load(&h->spilled),
                         "done", (unsigned)atomic_load(&h->done), "j_sleep", (unsigned)atomic_load(&h->j_sleep),
                         "wlock_word", wlock_word, "wlock_owner", wlock_owner, "rlock_word", rlock_word,
                         "rlock_owner", rlock_owner);
}

/* Copy, without the GIL when large (the caller owns both buffers meanwhile). */
static void copy_bytes(char *dst, const char *src, size_t n)
{
    if (n == 0)
        return; /* src may be NULL (None, True, an empty message) */
    if (n < BIG_COPY) {
        memcpy(dst, src, n);
        return;
    }
    Py_BEGIN_ALLOW_THREADS
    memcpy(dst, src, n);
    Py_END_ALLOW_THREADS
}

/* ------------------------------------------------------------ writing */

typedef struct {
    cc_chan *ch;
    uint32_t pos, count; /* head as written so far (published or not) */
    uint64_t published;
} writer;

static void writer_start(writer *w, cc_chan *ch)
{
    w->ch = ch;
    w->published = atomic_load_explicit(&ch->hdr->head, memory_order_relaxed);
    w->pos = word_pos(w->published);
    w->count = word_count(w->published);
}

/* Make the frames written so far visible, waking the reader if it sleeps. */
static void writer_publish(writer *w)
{
    struct cc_chan_shared *h = w->ch->hdr;
    uint64_t now = make_word(w->pos, w->count);
    if (now == w->published)
        return;
    /* seq_cst store then load, paired with the reader's r_sleep store then
     * head load: one of the two sees the other. */
    atomic_store(&h->head, now);
    w->published = now;
    if (take_sleepers(&h->r_sleep))
        futex_wake_all(pos_half(&h->head));
    if (w->ch->bell)
        cc_bell_ring(w->ch->bell);
}

/* Bytes a frame of `payload` bytes takes at the current position, with the
 * PAD frame that skips the end of the ring when it does not fit there. */
static size_t writer_need(const writer *w, size_t payload)
{
    size_t fsz = FRAME_HDR + round8(payload);
    size_t to_end = w->ch->capacity - (w->pos & (w->ch->capacity - 1));
    return fsz > to_end ? fsz + to_end : fsz;
}

/* Free bytes, keeping FRAME_HDR in reserve so that an ABORT frame always fits.
 * The ABORT of a dead writer's partial message may take the reserve: then
 * none is free until readers make room. */
static size_t writer_room(const writer *w, uint64_t tail)
{
    size_t used = (uint32_t)(w->pos - word_pos(tail));
    size_t usable = w->ch->capacity - FRAME_HDR;
    return used < usable ? usable - used : 0;
}

/* Wait until `need` bytes are free and, with `slot`, the queue is below its
 * bound. Publishes what is written before sleeping. */
static int writer_wait(writer *w, size_t need, int slot, cc_deadline deadline)
{
    struct cc_chan_shared *h = w->ch->hdr;
    uint32_t maxsize = h->maxsize;
    for (;;) {
        uint64_t t = atomic_load_explicit(&h->tail, memory_order_acquire);
        if (writer_room(w, t) >= need && (!slot || !maxsize || w->count - word_count(t) < maxsize))
            return CC_CHAN_OK;
        writer_publish(w);
        if (cc_deadline_passed(deadline))
            return CC_CHAN_TIMEOUT;
        if (spin_until_changed(pos_half(&h->tail), word_pos(t)))
            continue;
        atomic_store(&h->w_sleep, 1);
        if (atomic_load(&h->tail) != t) {
            atomic_store(&h->w_sleep, 0);
            continue;
        }
        int r = wait_slice(pos_half(&h->tail), word_pos(t), deadline);
        atomic_store(&h->w_sleep, 0);
        if (r < 0)
            return CC_CHAN_ERROR;
    }
}

/* Write one frame at the current position (room already checked). `prefix`
 * (pre_len bytes) goes before `data` in the payload. */
static void writer_put_frame(writer *w, unsigned flags, int tag, const void *prefix, size_t pre_len,
                             const char *data, size_t len)
{
    size_t cap = w->ch->capacity;
    size_t off = w->pos & (cap - 1);
    size_t payload = pre_len + len;
    size_t fsz = FRAME_HDR + round8(payload);
    if (fsz > cap - off) {
        frame_hdr pad = {(uint32_t)(cap - off - FRAME_HDR), F_PAD, 0, 0};
        memcpy(w->ch->ring + off, &pad, FRAME_HDR);
        w->pos += (uint32_t)(cap - off);
        off = 0;
    }
    frame_hdr fh = {(uint32_t)payload, (uint8_t)flags, (uint8_t)tag, 0};
    char *dst = w->ch->ring + off;
    memcpy(dst, &fh, FRAME_HDR);
    if (pre_len)
        memcpy(dst + FRAME_HDR, prefix, pre_len);
    copy_bytes(dst + FRAME_HDR + pre_len, data, len);
    w->pos += (uint32_t)fsz;
    if (flags & F_END)
        w->count++;
}

/* Whether the published head ends inside a long message: its first chunk
 * was published (head moved past the position where the message began) and
 * its END or ABORT was not (head counts no more messages than then). Exact
 * whenever the writer dies: an ABORT is appended only where one is owed,
 * once, so it always fits in the reserve (an ABORT appended for a message
 * of which nothing was published, or a second one, took the reserve and then
 * room that unread frames occupy). */
static int partly_published(struct cc_chan_shared *h)
{
    if (!atomic_load(&h->w_in_msg))
        return 0;
    uint64_t start = atomic_load(&h->w_msg_start), head = atomic_load(&h->head);
    return word_count(head) == word_count(start) && word_pos(head) != word_pos(start);
}

/* End the partly published long message with an ABORT frame (readers drop
 * it). w_msg_start moves past the ABORT before head does, so a writer that
 * dies here leaves a state from which its successor appends the ABORT only
 * if it was not published. */
static void writer_abort_msg(writer *w)
{
    writer_put_frame(w, F_ABORT, 0, NULL, 0, NULL, 0);
    atomic_store(&w->ch->hdr->w_msg_start, make_word(w->pos, w->count));
    writer_publish(w);
}

/* Recover the write side after its holder died: end its partial message. */
static void writer_recover(cc_chan *ch)
{
    struct cc_chan_shared *h = ch->hdr;
    if (partly_published(h)) {
        writer w;
        writer_start(&w, ch);
        /* the reserve guarantees room for it */
        writer_abort_msg(&w);
    }
    atomic_store(&h->w_in_msg, 0);
    atomic_store(&h->w_sleep, 0);
    pthread_mutex_consistent(&h->wlock);
}

/* A message longer than a quarter of the ring, in chunks; on failure after
 * the first chunk an ABORT frame tells the readers to drop it. */
static int writer_stream(writer *w, const cc_chan_msg *m, int slot, cc_deadline deadline)
{
    struct cc_chan_shared *h = w->ch->hdr;
    size_t chunk_max = w->ch->capacity / 4;
    size_t sent = 0;
    int r = CC_CHAN_OK;
    uint64_t total = m->len;
    /* where the message begins (with the PAD its first frame may need):
     * frames written before it are published with it, or before it */
    atomic_store(&h->w_msg_start, make_word(w->pos, w->count));
    atomic_store(&h->w_in_msg, 1);
    while (sent < m->len) {
        size_t pre = sent ? 0 : sizeof total;
        size_t chunk = m->len - sent < chunk_max - pre ? m->len - sent : chunk_max - pre;
        r = writer_wait(w, writer_need(w, pre + chunk), slot && sent == 0, deadline);
        if (r != CC_CHAN_OK)
            break;
        unsigned flags = (sent ? 0 : F_BEGIN) | (sent + chunk == m->len ? F_END : 0);
        writer_put_frame(w, flags, m->tag, pre ? &total : NULL, pre, m->data + sent, chunk);
        sent += chunk;
        writer_publish(w);
    }
    if (r != CC_CHAN_OK && sent)
        writer_abort_msg(w); /* the chunks were published */
    atomic_store(&h->w_in_msg, 0);
    return r;
}

int cc_chan_send(cc_chan *ch, const cc_chan_msg *msgs, Py_ssize_t n, cc_deadline deadline,
                 Py_ssize_t *nsent)
{
    struct cc_chan_shared *h = ch->hdr;
    int died;
    *nsent = 0;
    int r = lock_robust(&h->wlock, deadline, &died);
    if (r != CC_CHAN_OK)
        return r;
    if (died)
        writer_recover(ch);
    writer w;
    writer_start(&w, ch);
    size_t single_max = ch->capacity / 4 - FRAME_HDR;
    for (Py_ssize_t i = 0; i < n; i++) {
        const cc_chan_msg *m = &msgs[i];
        if (m->len <= single_max) {
            r = writer_wait(&w, writer_need(&w, m->len), 1, deadline);
            if (r != CC_CHAN_OK)
                break;
            writer_put_frame(&w, F_BEGIN | F_END, m->tag, NULL, 0, m->data, m->len);
        }
        else if ((r = writer_stream(&w, m, 1, deadline)) != CC_CHAN_OK)
            break;
        ++*nsent;
    }
    writer_publish(&w);
    pthread_mutex_unlock(&h->wlock);
    return r;
}

/* ------------------------------------------------------------ spilling */

/* Bytes that placing message m now certainly fits in: a single frame with
 * its PAD, or every chunk of a long one plus a PAD of up to a chunk. */
static size_t msg_need(const writer *w, const cc_chan_msg *m)
{
    size_t chunk_max = w->ch->capacity / 4;
    if (m->len <= chunk_max - FRAME_HDR)
        return writer_need(w, m->len);
    size_t total = m->len + sizeof(uint64_t);
    size_t chunks = (total + chunk_max - FRAME_HDR - 1) / (chunk_max - FRAME_HDR);
    return total + chunks * (FRAME_HDR + 8) + chunk_max;
}

static int place(writer *w, const cc_chan_msg *m)
{
    if (m->len <= w->ch->capacity / 4 - FRAME_HDR) {
        writer_put_frame(w, F_BEGIN | F_END, m->tag, NULL, 0, m->data, m->len);
        return CC_CHAN_OK;
    }
    /* room for all of it was checked, unless the message can never fit (feeder) */
    return writer_stream(w, m, 0, CC_FOREVER);
}

/* Wait, holding no lock, until a reader moves tail away from `t`: at most a
 * slice. Waiters announce themselves in room_sleep so that readers wake them. */
static int wait_tail_unlocked(struct cc_chan_shared *h, uint64_t t, cc_deadline deadline)
{
    if (spin_until_changed(pos_half(&h->tail), word_pos(t)))
        return CC_CHAN_OK;
    atomic_store(&h->room_sleep, 1);
    int r = 0;
    if (atomic_load(&h->tail) == t)
        r = wait_slice(pos_half(&h->tail), word_pos(t), deadline);
    return r < 0 ? CC_CHAN_ERROR : CC_CHAN_OK;
}

/* Take wlock for a put on a bounded queue. Its deadline (put_nowait, a
 * timeout) is about the queue's bound, not the lock: the stdlib raises Full
 * only when the queue is full. Another put or a feeder holds the lock only
 * while it copies, so past the deadline the lock is still waited for (in
 * short slices: Ctrl-C gets through), except while its holder sleeps inside
 * a long message waiting for readers (a feeder streaming an item larger than
 * the ring; the caller may be the reader it waits for): CC_CHAN_TIMEOUT. */
static int lock_for_bounded_put(struct cc_chan_shared *h, cc_deadline deadline, int *died)
{
    int r = lock_robust(&h->wlock, deadline, died);
    while (r == CC_CHAN_TIMEOUT && !(atomic_load(&h->w_in_msg) && atomic_load(&h->w_sleep)))
        r = lock_robust(&h->wlock, cc_monotonic_ns() + LOCK_POLL_NS, died);
    return r;
}

static void spill_reserve(struct cc_chan_shared *h, Py_ssize_t n, Py_ssize_t *nspilled)
{
    atomic_fetch_add(&h->spilled, (uint32_t)n);
    *nspilled += n;
}

int cc_chan_put(cc_chan *ch, const cc_chan_msg *msgs, Py_ssize_t n, cc_deadline deadline, int spill_all,
                Py_ssize_t *nsent, Py_ssize_t *nspilled)
{
    struct cc_chan_shared *h = ch->hdr;
    uint32_t maxsize = h->maxsize;
    int died;
    *nsent = *nspilled = 0;
    if (spill_all && !maxsize) {
        /* no bound to check: the reservation needs no lock */
        spill_reserve(h, n, nspilled);
        return CC_CHAN_OK;
    }
    int r = maxsize ? lock_for_bounded_put(h, deadline, &died) : lock_robust(&h->wlock, deadline, &died);
    if (r == CC_CHAN_TIMEOUT && !maxsize) {
        /* put_nowait on an unbounded queue while another put holds the lock:
         * never Full, the items go behind in the spill */
        spill_reserve(h, n, nspilled);
        return CC_CHAN_OK;
    }
    if (r != CC_CHAN_OK)
        return r;
    if (died)
        writer_recover(ch);
    writer w;
    writer_start(&w, ch);
    for (Py_ssize_t i = 0; i < n;) {
        const cc_chan_msg *m = &msgs[i];
        uint64_t t = atomic_load_explicit(&h->tail, memory_order_acquire);
        if (maxsize && w.count - word_count(t) + atomic_load(&h->spilled) >= maxsize) {
            /* The bound is reached. Wait for a get without the lock: spilled
             * items hold slots, and their feeders need the lock to place them. */
            writer_publish(&w);
            pthread_mutex_unlock(&h->wlock);
            if (cc_deadline_passed(deadline))
                return CC_CHAN_TIMEOUT;
            if ((r = wait_tail_unlocked(h, t, deadline)) != CC_CHAN_OK)
                return r;
            if ((r = lock_for_bounded_put(h, deadline, &died)) != CC_CHAN_OK)
                return r;
            if (died)
                writer_recover(ch);
            writer_start(&w, ch);
            continue;
        }
        if (!spill_all) {
            if (writer_room(&w, t) >= msg_need(&w, m)) {
                if ((r = place(&w, m)) != CC_CHAN_OK)
                    break; /* cannot happen: room was checked */
                ++*nsent;
                i++;
                continue;
            }
            spill_all = 1; /* no room: this item and the rest go to the spill, in order */
        }
        spill_reserve(h, 1, nspilled);
        i++;
    }
    writer_publish(&w);
    pthread_mutex_unlock(&h->wlock);
    return r;
}

int cc_chan_feed(cc_chan *ch, const cc_chan_msg *msgs, Py_ssize_t n, Py_ssize_t *nsent)
{
    struct cc_chan_shared *h = ch->hdr;
    int died;
    *nsent = 0;
    int r = lock_robust(&h->wlock, CC_FOREVER, &died);
    if (r != CC_CHAN_OK)
        return r;
    if (died)
        writer_recover(ch);
    writer w;
    writer_start(&w, ch);
    uint64_t t = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        t = atomic_load_explicit(&h->tail, memory_order_acquire);
        size_t need = msg_need(&w, &msgs[i]);
        /* a message that could never fit at once streams (holding the lock
         * while readers take it); any other waits, without the lock, for room */
        if (writer_room(&w, t) < need && need <= ch->capacity - FRAME_HDR) {
            r = CC_CHAN_NOROOM;
            break;
        }
        if ((r = place(&w, &msgs[i])) != CC_CHAN_OK)
            break;
        ++*nsent;
    }
    writer_publish(&w);
    /* after head: the items are never uncounted (see cc_chan_count) */
    atomic_fetch_sub(&h->spilled, (uint32_t)*nsent);
    pthread_mutex_unlock(&h->wlock);
    if (r == CC_CHAN_NOROOM && wait_tail_unlocked(h, t, CC_FOREVER) != CC_CHAN_OK)
        return CC_CHAN_ERROR;
    return r;
}

void cc_chan_unspill(cc_chan *ch, Py_ssize_t n)
{
    atomic_fetch_sub(&ch->hdr->spilled, (uint32_t)n);
}

/* ------------------------------------------------------------ reading */

typedef struct {
    cc_chan *ch;
    uint32_t pos, count; /* tail as read so far (committed or not) */
    uint64_t committed;
} reader;

/* Hand the frames read so far back to the writer. */
static void reader_commit(reader *rd)
{
    struct cc_chan_shared *h = rd->ch->hdr;
    uint64_t now = make_word(rd->pos, rd->count);
    if (now == rd->committed)
        return;
    atomic_store(&h->tail, now);
    rd->committed = now;
    /* both flags cleared: one wake-up serves the sleepers of both */
    if (take_sleepers(&h->w_sleep) | take_sleepers(&h->room_sleep))
        futex_wake_all(pos_half(&h->tail));
}

/* The writer of the message being received may have died: probe its lock and
 * recover it (an ABORT frame follows) if so. */
static void reader_probe_writer(cc_chan *ch)
{
    int r = pthread_mutex_trylock(&ch->hdr->wlock);
    if (r == EOWNERDEAD)
        writer_recover(ch);
    if (r == 0 || r == EOWNERDEAD)
        pthread_mutex_unlock(&ch->hdr->wlock);
}

/* Wait for frames after rd->pos. Inside a long message the deadline does not
 * apply (its writer is streaming it) but the writer's death does. */
static int reader_wait(reader *rd, int in_msg, cc_deadline deadline)
{
    struct cc_chan_shared *h = rd->ch->hdr;
    if (!in_msg && cc_deadline_passed(deadline))
        return CC_CHAN_TIMEOUT;
    reader_commit(rd);
    if (spin_until_changed(pos_half(&h->head), rd->pos))
        return CC_CHAN_OK;
    atomic_store(&h->r_sleep, 1);
    if (word_pos(atomic_load(&h->head)) != rd->pos) {
        atomic_store(&h->r_sleep, 0);
        return CC_CHAN_OK;
    }
    int r = wait_slice(pos_half(&h->head), rd->pos, in_msg ? CC_FOREVER : deadline);
    atomic_store(&h->r_sleep, 0);
    if (r < 0)
        return CC_CHAN_ERROR;
    if (in_msg && word_pos(atomic_load(&h->head)) == rd->pos)
        reader_probe_writer(rd->ch);
    return CC_CHAN_OK;
}

int cc_chan_recv(cc_chan *ch, Py_ssize_t max_items, cc_deadline deadline, cc_chan_sink *sink,
                 Py_ssize_t *nrecv)
{
    struct cc_chan_shared *h = ch->hdr;
    int died;
    *nrecv = 0;
    int r = lock_robust(&h->rlock, deadline, &died);
    if (r != CC_CHAN_OK)
        return r;
    if (died) {
        /* Frames of a message the dead reader had begun are skipped below. */
        atomic_store(&h->r_sleep, 0);
        pthread_mutex_consistent(&h->rlock);
    }
    reader rd = {ch, 0, 0, atomic_load_explicit(&h->tail, memory_order_relaxed)};
    rd.pos = word_pos(rd.committed);
    rd.count = word_count(rd.committed);
    size_t cap = ch->capacity;
    PyObject *big = NULL; /* the long message being received */
    uint64_t total = 0, filled = 0;
    int big_tag = 0;

    for (;;) {
        uint64_t head = atomic_load_explicit(&h->head, memory_order_acquire);
        uint32_t avail = word_pos(head) - rd.pos;
        if (avail == 0) {
            if (*nrecv > 0 && !big)
                break;
            if ((r = reader_wait(&rd, big != NULL, deadline)) != CC_CHAN_OK)
                break;
            continue;
        }
        const char *frame = ch->ring + (rd.pos & (cap - 1));
        frame_hdr fh;
        memcpy(&fh, frame, FRAME_HDR);
        size_t fsz = FRAME_HDR + round8(fh.len);
        const char *payload = frame + FRAME_HDR;
        if (fsz > avail) {
            PyErr_SetString(PyExc_RuntimeError, "corrupted cconc queue");
            r = CC_CHAN_ERROR;
            break;
        }
        if (fh.flags & (F_PAD | F_ABORT)) {
            if (fh.flags & F_ABORT)
                Py_CLEAR(big); /* its writer gave up or died */
            rd.pos += (uint32_t)fsz;
            continue;
        }
        if (big && (fh.flags & F_BEGIN))
            Py_CLEAR(big); /* cannot happen with a sane writer: drop the old one */
        if (!big) {
            if (!(fh.flags & F_BEGIN)) {
                /* the rest of a message a dead or interrupted reader had begun */
                rd.pos += (uint32_t)fsz;
                rd.count += (fh.flags & F_END) != 0;
                continue;
            }
            if (fh.flags & F_END) {
                if (sink->take(sink, fh.tag, payload, fh.len, NULL) < 0) {
                    r = CC_CHAN_ERROR;
                    break;
                }
                rd.pos += (uint32_t)fsz;
                rd.count++;
                if (++*nrecv >= max_items)
                    break;
                continue;
            }
            if (*nrecv > 0)
                break; /* a long message starts a call of its own */
            if (fh.len < sizeof total) {
                PyErr_SetString(PyExc_RuntimeError, "corrupted cconc queue");
                r = CC_CHAN_ERROR;
                break;
            }
            memcpy(&total, payload, sizeof total);
            if (total > (uint64_t)PY_SSIZE_T_MAX || !(big = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total))) {
                if (!PyErr_Occurred())
                    PyErr_NoMemory();
                r = CC_CHAN_ERROR; /* the message stays for a later get */
                break;
            }
            big_tag = fh.tag;
            filled = fh.len - sizeof total;
            if (filled > total)
                filled = total;
            copy_bytes(PyBytes_AS_STRING(big), payload + sizeof total, (size_t)filled);
            rd.pos += (uint32_t)fsz;
            reader_commit(&rd);
            continue;
        }
        /* a chunk of the long message */
        size_t n = fh.len;
        if (filled + n > total)
            n = (size_t)(total - filled);
        copy_bytes(PyBytes_AS_STRING(big) + filled, payload, n);
        filled += n;
        rd.pos += (uint32_t)fsz;
        if (!(fh.flags & F_END)) {
            reader_commit(&rd);
            continue;
        }
        rd.count++;
        PyObject *done = big;
        big = NULL;
        if (filled != total) {
            Py_DECREF(done);
            continue;
        }
        if (sink->take(sink, big_tag, PyBytes_AS_STRING(done), (size_t)total, done) < 0) {
            r = CC_CHAN_ERROR;
            break;
        }
        if (++*nrecv >= max_items)
            break;
    }
    /* A long message interrupted midway is dropped: the next reader skips
     * the rest of its frames. */
    Py_XDECREF(big);
    reader_commit(&rd);
    pthread_mutex_unlock(&h->rlock);
    return r;
}

/* ------------------------------------------------------------ JoinableQueue */

/* Items put and not yet marked done: placed in the ring, or spilled.
 * spilled is read before head (see cc_chan_count). */
static uint32_t put_count(struct cc_chan_shared *h)
{
    uint32_t spilled = atomic_load(&h->spilled);
    return word_count(atomic_load(&h->head)) + spilled;
}

uint32_t cc_chan_unfinished(const cc_chan *ch)
{
    uint32_t done = atomic_load(&ch->hdr->done);
    return put_count(ch->hdr) - done;
}

int cc_chan_task_done(cc_chan *ch)
{
    struct cc_chan_shared *h = ch->hdr;
    uint32_t done = atomic_load(&h->done), placed;
    do {
        placed = word_count(atomic_load(&h->head));
        if (done == placed) {
            PyErr_SetString(PyExc_ValueError, "task_done() called too many times");
            return -1;
        }
    } while (!atomic_compare_exchange_weak(&h->done, &done, done + 1));
    if (done + 1 == put_count(h) && take_sleepers(&h->j_sleep))
        futex_wake_all((void *)&h->done);
    return 0;
}

int cc_chan_join(cc_chan *ch)
{
    struct cc_chan_shared *h = ch->hdr;
    for (;;) {
        uint32_t done = atomic_load(&h->done);
        if (done == put_count(h))
            return CC_CHAN_OK;
        atomic_store(&h->j_sleep, 1);
        int r = 0;
        if (atomic_load(&h->done) == done)
            r = wait_slice((void *)&h->done, done, CC_FOREVER);
        if (r < 0)
            return CC_CHAN_ERROR;
    }
}

/* ------------------------------------------------------------ doorbell */

#define BELL_MAGIC 0x6c6c6562u /* "bell" */
#define BELL_SIZE 4096

struct cc_bell_shared {
    uint32_t magic;
    _Alignas(64) _Atomic uint32_t rings; /* the futex word: rings so far (wraps) */
    _Atomic uint32_t sleep;              /* the reader sleeps on `rings` (a sleep flag) */
};

_Static_assert(sizeof(struct cc_bell_shared) <= BELL_SIZE, "doorbell larger than its page");

static int bell_map(cc_bell *b, int fd)
{
    void *p = map_shared(fd, BELL_SIZE);
    if (!p)
        return -1;
    b->hdr = p;
    b->fd = fd;
    return 0;
}

int cc_bell_create(cc_bell *b)
{
    b->hdr = NULL;
    b->fd = -1;
    int fd = new_shared_fd("cconc-mp-bell", BELL_SIZE);
    if (fd < 0)
        return -1;
    if (bell_map(b, fd) < 0) {
        close(fd);
        return -1;
    }
    b->hdr->magic = BELL_MAGIC;
    return 0;
}

int cc_bell_attach(cc_bell *b, int fd)
{
    b->hdr = NULL;
    b->fd = -1;
    if (!passed_size(fd, BELL_SIZE, "doorbell") || bell_map(b, fd) < 0) {
        close(fd);
        return -1;
    }
    if (b->hdr->magic != BELL_MAGIC) {
        PyErr_SetString(PyExc_ValueError, "not a cconc doorbell");
        cc_bell_release(b);
        return -1;
    }
    return 0;
}

void cc_bell_release(cc_bell *b)
{
    if (b->hdr)
        munmap(b->hdr, BELL_SIZE);
    if (b->fd >= 0)
        close(b->fd);
    b->hdr = NULL;
    b->fd = -1;
}

uint32_t cc_bell_count(const cc_bell *b) { return atomic_load(&b->hdr->rings); }

void cc_bell_ring(cc_bell *b)
{
    struct cc_bell_shared *h = b->hdr;
    atomic_fetch_add(&h->rings, 1);
    if (take_sleepers(&h->sleep))
        futex_wake_all((void *)&h->rings);
}

int cc_bell_wait(cc_bell *b, uint32_t seen, cc_deadline deadline)
{
    struct cc_bell_shared *h = b->hdr;
    for (;;) {
        if (atomic_load(&h->rings) != seen)
            return CC_CHAN_OK;
        if (cc_deadline_passed(deadline))
            return CC_CHAN_TIMEOUT;
        if (spin_until_changed((void *)&h->rings, seen))
            return CC_CHAN_OK;
        atomic_store(&h->sleep, 1);
        int r = 0;
        if (atomic_load(&h->rings) == seen)
            r = wait_slice((void *)&h->rings, seen, deadline);
        atomic_store(&h->sleep, 0); /* the one reader is awake: rings need not wake it */
        if (r < 0)
            return CC_CHAN_ERROR;
    }
}

#endif /* __linux__ */

/* The process-shared channel: a byte ring of framed messages in shared memory.
 *
 * Layout. One memfd (so nothing is left in /dev/shm when a process dies)
 * mapped MAP_SHARED by every process that uses the channel: a header page,
 * then `capacity` bytes of ring (a power of two). Messages travel as frames
 * of 8-byte header + payload, 8-aligned, never wrapping (a PAD frame fills
 * the end of the ring when the next frame does not fit there). A message
 * that fits in a quarter of the ring is one frame; a larger one streams as a
 * BEGIN frame (carrying the total length), CONT frames and an END frame, so
 * a message of any size passes through a ring of any size.
 *
 * Who writes what. A robust process-shared mutex per side (wlock, rlock)
 * makes the holder the only writer, or the only reader, of the ring: the ring
 * itself is single-producer single-consumer. `head` (written only by the
 * wlock holder) and `tail` (only by the rlock holder) each pack a 32-bit
 * byte position and a 32-bit count of complete messages, stored with one
 * 64-bit atomic store: a frame becomes visible, and a message counts as
 * placed, exactly when `head` is stored; it counts as taken exactly when
 * `tail` is stored. qsize() is head.count - tail.count.
 *
 * Dead processes. A process killed while it holds a lock leaves the mutex
 * "owner died": the next process to lock it recovers.
 *  - A writer that died before storing the END frame's head has placed
 *    nothing (its put never returned). If it had published part of a long
 *    message (w_in_msg, w_msg_start: the head word where the message began),
 *    the recovering process appends an ABORT frame and readers drop the
 *    partial message. The ABORT is appended only then, and once: it takes
 *    the FRAME_HDR bytes that writers always leave free, so a second one, or
 *    one for a message of which nothing was published, would overwrite
 *    unread frames. A reader waiting in the middle of a long message probes
 *    wlock once per wait slice, so it recovers a dead writer itself instead
 *    of waiting for the next put.
 *  - A reader that died has taken exactly the frames up to the last `tail`
 *    it stored: the next reader starts from there. Frames of a message whose
 *    BEGIN was already taken are orphans and are skipped. So the message that
 *    the dead reader was receiving is lost if it was long (streamed) and
 *    already begun, and is delivered to the next reader otherwise.
 * No other lock is ever held, so nothing else can wedge.
 *
 * Waiting. Process-shared futex waits on the 32-bit position half of
 * head/tail, announced through a sleep flag that the waker clears, so that a
 * put or get makes no system call when the other side is awake, and a
 * sleeper killed while asleep costs at most one needless wake-up. Every wait releases the GIL
 * and lasts at most a slice (50 ms), after which the signal handlers run
 * (Ctrl-C) and the deadline is re-checked: a blocked call answers Ctrl-C
 * within a slice even when the signal is delivered to another thread.
 *
 * All functions are called with the GIL held (they release it to wait and to
 * copy large payloads); none runs Python code.
 */
#ifndef CC_CHANNEL_H
#define CC_CHANNEL_H

#include "cconc.h"

#include <stddef.h>
#include <stdint.h>

/* Results of the blocking calls. */
#define CC_CHAN_OK 0
#define CC_CHAN_TIMEOUT 1
#define CC_CHAN_ERROR (-1) /* a Python exception is set */
#define CC_CHAN_NOROOM 2  /* cc_chan_feed: wait for room again */

/* Message tags: how the payload encodes the object (codec.c). */
enum {
    CC_TAG_PICKLE = 'P', /* ForkingPickler.dumps(obj) */
    CC_TAG_INT = 'I',    /* int64, native byte order */
    CC_TAG_FLOAT = 'F',  /* double */
    CC_TAG_BYTES = 'B',  /* the bytes object's contents */
    CC_TAG_STR = 'S',    /* UTF-8 */
    CC_TAG_NONE = 'N',
    CC_TAG_TRUE = 'T',
    CC_TAG_FALSE = 'f',
};

#define CC_CHAN_DEFAULT_CAPACITY ((size_t)8 << 20)
#define CC_CHAN_MIN_CAPACITY ((size_t)4096)
#define CC_CHAN_MAX_CAPACITY ((size_t)1 << 30)

struct cc_chan_shared;

/* A doorbell: a futex word in a shared page of its own, which the writers
 * of several channels ring (cc_chan.bell: at every publish, also of a part
 * of a long message) so that the one process reading them all can sleep
 * until any of them wrote (the pool's result rings, one per worker). The
 * reader reads the count, looks at every channel without waiting
 * (cc_chan_has_frames), then waits for the count to move from what it
 * read: frames published after the look rang after the count was read. A
 * ring makes a system call only when the reader sleeps. */
struct cc_bell_shared;
typedef struct {
    struct cc_bell_shared *hdr; /* NULL when not attached */
    int fd;                     /* -1 once closed */
} cc_bell;

int cc_bell_create(cc_bell *b);
/* Map the doorbell behind `fd` (taking ownership of fd). 0 or -1 with an exception. */
int cc_bell_attach(cc_bell *b, int fd);
/* Unmap the doorbell and close its fd (a process's handle only). */
void cc_bell_release(cc_bell *b);
uint32_t cc_bell_count(const cc_bell *b);
void cc_bell_ring(cc_bell *b);
/* Wait (until `deadline`) for the count to differ from `seen`: CC_CHAN_OK,
 * CC_CHAN_TIMEOUT, or CC_CHAN_ERROR when a signal handler raised. */
int cc_bell_wait(cc_bell *b, uint32_t seen, cc_deadline deadline);
/* The cc_bell of a cconc _Doorbell object; NULL with TypeError otherwise. */
cc_bell *cc_bell_of(cc_state *st, PyObject *obj);

/* A process's handle on a channel. */
typedef struct {
    struct cc_chan_shared *hdr; /* NULL when not attached */
    char *ring;
    size_t capacity;
    size_t map_size;
    int fd;        /* -1 once closed */
    cc_bell *bell; /* rung at every publish of this handle's writes (NULL: none) */
} cc_chan;

/* Create a new channel (capacity rounded up to a power of two) with its
 * queue bound `maxsize` (0: unbounded). 0, or -1 with OSError/ValueError. */
int cc_chan_create(cc_chan *ch, size_t capacity, uint32_t maxsize);
/* Map the channel behind `fd` (taking ownership of fd). 0 or -1 with an exception. */
int cc_chan_attach(cc_chan *ch, int fd);
/* Close the fd (the mapping stays until cc_chan_unmap). */
void cc_chan_close_fd(cc_chan *ch);
void cc_chan_unmap(cc_chan *ch);

uint32_t cc_chan_maxsize(const cc_chan *ch);
/* Whether frames were published and not yet taken (a complete message, or
 * a part of a long one being written). */
int cc_chan_has_frames(const cc_chan *ch);
/* Complete messages placed and not yet taken, plus those spilled. */
uint32_t cc_chan_count(const cc_chan *ch);

/* One message to send: its tag and payload (contiguous, kept alive by the caller). */
typedef struct {
    int tag;
    const char *data;
    size_t len;
} cc_chan_msg;

/* Send msgs[0..n) in order, waiting (until `deadline`) for the queue bound
 * and for room. *nsent says how many were placed (each completely), also on
 * TIMEOUT and ERROR. */
int cc_chan_send(cc_chan *ch, const cc_chan_msg *msgs, Py_ssize_t n, cc_deadline deadline,
                 Py_ssize_t *nsent);

/* Queue's put: send msgs[0..n) in order, waiting (until `deadline`) for
 * the queue bound only, never for room. When the ring has no room for a
 * message, that message and the rest are reserved as spilled instead
 * (counted by cc_chan_count, the bound and join until a feeder places
 * them): *nsent were placed, the next *nspilled were reserved (also on
 * TIMEOUT and ERROR), and the caller keeps those in its spill buffer.
 * spill_all: reserve every message (the caller's spill is not empty). */
int cc_chan_put(cc_chan *ch, const cc_chan_msg *msgs, Py_ssize_t n, cc_deadline deadline, int spill_all,
                Py_ssize_t *nsent, Py_ssize_t *nspilled);
/* The feeder: place reserved (spilled) msgs[0..n) in order, as many as
 * there is room for. CC_CHAN_OK when all were placed; CC_CHAN_NOROOM after
 * waiting (a slice at most, holding no lock) for a reader to make room.
 * *nsent says how many were placed. A message that can never fit in the
 * ring at once streams, holding the write lock until readers took it. */
int cc_chan_feed(cc_chan *ch, const cc_chan_msg *msgs, Py_ssize_t n, Py_ssize_t *nsent);
/* Give back the reservation of n spilled messages that will not be placed. */
void cc_chan_unspill(cc_chan *ch, Py_ssize_t n);

/* Where received messages go. take() is called under the read lock with the
 * GIL held and must not run Python code (it may allocate objects that are
 * not tracked by the GC). `bytes` is NULL for a message read in place from
 * the ring (data, len valid only during the call), else a new bytes object
 * holding the payload whose reference take() steals. 0 or -1 (exception). */
typedef struct cc_chan_sink {
    int (*take)(struct cc_chan_sink *sink, int tag, const char *data, size_t len, PyObject *bytes);
} cc_chan_sink;

/* Receive up to max_items messages: wait (until `deadline`) for the first,
 * then take those already complete. *nrecv counts the messages handed to
 * the sink, also on ERROR. */
int cc_chan_recv(cc_chan *ch, Py_ssize_t max_items, cc_deadline deadline, cc_chan_sink *sink,
                 Py_ssize_t *nrecv);

/* JoinableQueue: task_done() (0, or -1 with ValueError when called too many
 * times) and join() (CC_CHAN_OK or CC_CHAN_ERROR). */
int cc_chan_task_done(cc_chan *ch);
int cc_chan_join(cc_chan *ch);
/* Unfinished tasks: placed messages not yet marked done. */
uint32_t cc_chan_unfinished(const cc_chan *ch);

/* For diagnosis: the shared header, ring and lock words as a dict (_debug_state). */
PyObject *cc_chan_debug_state(const cc_chan *ch);

#endif /* CC_CHANNEL_H */

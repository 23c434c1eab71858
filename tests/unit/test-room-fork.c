/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A process that forks while the room of a restore is being made (room.c):
 * the child has neither the helper thread nor the room's populator, so
 * its own save must not wait for them (join a thread that is not there,
 * or a lock one of them held at the fork), and it makes the room of its
 * own restores inline.  Found as a hang of a forking test under ASan.
 */
#include <signal.h>
#include <unistd.h>

#include "hostile-util.h"
#include "populate.h"
#include "unit-util.h"

#define PAYLOAD (64 * MiB)

typedef struct Child {
    const char *path;
    const uint8_t *data;
} Child;

/* In the child: a save and a restore of another image, within 60 s. */
static int child_saves(void *opaque)
{
    const Child *c = opaque;
    CprPopulatorStats st;
    uint64_t inherited;

    alarm(60);
    cpr_populator_stats(&st);
    inherited = st.files_running;       /* the parent's, counted */
    tu_save(c->path, c->data, 4096);
    tu_assert_loads(c->path, c->data, 4096);
    /* No helper here: in_close made the room itself. */
    cpr_populator_stats(&st);
    if (st.files_running != inherited + 1) {
        _exit(3);
    }
    tu_quiesce();
    /* _exit: the parent's populator is not this process's to free. */
    _exit(0);
}

static void test_fork_during_room(void)
{
    char *path = tu_path("room-fork");
    char *other = tu_path("room-fork-child");   /* the parent's room has path's */
    uint8_t *a = tu_pattern(PAYLOAD, 21);
    Child c = { other, a };
    CprPopulatorStats st;
    int status;

    tu_save(path, a, PAYLOAD);
    tu_assert_loads(path, a, PAYLOAD);      /* in_close hands the room over */
    /* Fork once the helper has started the room's populator. */
    for (int i = 0; i < 2000; i++) {
        cpr_populator_stats(&st);
        if (st.files_running) {
            break;
        }
        g_usleep(1000);
    }
    g_assert_cmpuint(st.files_running, ==, 1);
    status = hu_run_child(child_saves, &c);
    hu_assert_exit_ok(status, "a save in a child forked while the room was made");
    tu_quiesce();
    g_free(a);
    g_free(other);
    g_free(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/room/fork-during-room", test_fork_during_room);
    return g_test_run();
}

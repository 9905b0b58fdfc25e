/* test_state_file.c — the agent's state file: unsealed events and per-client stream progress
 * survive the process; an update cut short by a kill is finished at the next open (the journal),
 * so a message is never counted both received and lost in transit, nor neither; a file from an
 * agent before the client table is read as it was; a full table gives up the least recently
 * seen client. Each test works on its own file under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "state_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char path[256];

static int setup(void **state)
{
    (void)state;
    static int n_test;
    snprintf(path, sizeof path, "/tmp/mw-test-state-%d-%d", (int)getpid(), ++n_test);
    unlink(path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static void test_progress_and_unsealed_survive_a_restart(void **state)
{
    (void)state;
    struct mw_state_file sf;
    uint64_t lost = 99;
    assert_int_equal(mw_state_file_open(&sf, path, &lost), 0);
    assert_int_equal(lost, 0);
    assert_false(sf.has_history); /* a new file knows no client */
    bool known = true;
    uint64_t evicted = 1;
    int slot = mw_state_file_find_client(&sf, 0xabc, &known, &evicted);
    assert_true(slot >= 0);
    assert_false(known);
    assert_int_equal(evicted, 0);
    assert_int_equal(mw_state_file_client(&sf, slot, 0xabc).messages, 0);
    mw_state_file_progress(&sf, slot, 0xabc, 10, 7, 0); /* the client's batch starts */
    for (uint64_t i = 1; i <= 5; i++)
        mw_state_file_progress(&sf, slot, 0xabc, 10 + i, 7 + i, 1); /* 5 accepted */
    mw_state_file_accepted(&sf, 2);                                 /* an unnumbered client's */
    mw_state_file_sealed(&sf, 3);
    mw_state_file_close(&sf); /* as a kill leaves it: nothing more is written at exit */

    assert_int_equal(mw_state_file_open(&sf, path, &lost), 0);
    assert_int_equal(lost, 4); /* 7 accepted, 3 sealed */
    assert_true(sf.has_history);
    slot = mw_state_file_find_client(&sf, 0xabc, &known, &evicted);
    assert_true(known);
    struct mw_state_client had = mw_state_file_client(&sf, slot, 0xabc);
    assert_int_equal(had.messages, 15);
    assert_int_equal(had.events, 12);
    mw_state_file_close(&sf);
    assert_int_equal(mw_state_file_open(&sf, path, &lost), 0);
    assert_int_equal(lost, 0); /* counted once, by the first start after the loss */
    mw_state_file_close(&sf);
}

/* A kill between the journal's arming and the slot's update: the next open finishes it, so the
 * message counts as received and accepted (lost unsealed), not as lost in transit as well. */
static void test_an_update_cut_short_is_finished_at_open(void **state)
{
    (void)state;
    struct mw_state_file sf;
    uint64_t lost = 0;
    assert_int_equal(mw_state_file_open(&sf, path, &lost), 0);
    bool known;
    uint64_t evicted;
    int slot = mw_state_file_find_client(&sf, 42, &known, &evicted);
    mw_state_file_progress(&sf, slot, 42, 100, 100, 0);
    /* What a process killed right after arming the journal for message 101 leaves behind. */
    sf.counts->journal = (struct mw_state_journal){.armed = 1,
                                                   .slot = (uint64_t)slot,
                                                   .client_id = 42,
                                                   .messages = 101,
                                                   .events = 101,
                                                   .accepted = sf.counts->accepted + 1};
    mw_state_file_close(&sf);
    assert_int_equal(mw_state_file_open(&sf, path, &lost), 0);
    assert_int_equal(lost, 1);
    assert_int_equal(mw_state_file_client(&sf, slot, 42).messages, 101);
    assert_int_equal(sf.counts->journal.armed, 0);
    /* Killed before arming: nothing of it happened (the message is then lost in transit). */
    sf.counts->journal = (struct mw_state_journal){.armed = 0,
                                                   .slot = (uint64_t)slot,
                                                   .client_id = 42,
                                                   .messages = 102,
                                                   .events = 102,
                                                   .accepted = 1};
    mw_state_file_close(&sf);
    assert_int_equal(mw_state_file_open(&sf, path, &lost), 0);
    assert_int_equal(lost, 0);
    assert_int_equal(mw_state_file_client(&sf, slot, 42).messages, 101);
    mw_state_file_close(&sf);
}

/* The 24-byte file of an agent before the client table: its unsealed count is read, the table
 * starts empty. */
static void test_a_file_from_before_the_client_table_is_read(void **state)
{
    (void)state;
    uint64_t old[3] = {0x6d7773746174653bULL, 10, 4};
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, old, sizeof old), (ssize_t)sizeof old);
    close(fd);
    struct mw_state_file sf;
    uint64_t lost = 0;
    assert_int_equal(mw_state_file_open(&sf, path, &lost), 0);
    assert_int_equal(lost, 6);
    assert_false(sf.has_history); /* its agent kept no client table */
    bool known = true;
    uint64_t evicted = 1;
    assert_int_equal(mw_state_file_find_client(&sf, 7, &known, &evicted), 0);
    assert_false(known);
    assert_int_equal(evicted, 0);
    mw_state_file_close(&sf);
}

static void test_a_full_table_gives_up_the_least_recently_seen(void **state)
{
    (void)state;
    struct mw_state_file sf;
    uint64_t lost = 0;
    assert_int_equal(mw_state_file_open(&sf, path, &lost), 0);
    bool known;
    uint64_t evicted;
    for (uint64_t id = 1; id <= MW_STATE_MAX_CLIENTS; id++) {
        int slot = mw_state_file_find_client(&sf, id, &known, &evicted);
        assert_false(known);
        assert_int_equal(evicted, 0);
        mw_state_file_progress(&sf, slot, id, id, 0, 0);
        mw_state_file_seen(&sf, slot, id == 17 ? 5 : 1000 + id);
    }
    int slot = mw_state_file_find_client(&sf, 9999, &known, &evicted);
    assert_false(known);
    assert_int_equal(evicted, 17);
    mw_state_file_progress(&sf, slot, 9999, 3, 3, 0);
    mw_state_file_seen(&sf, slot, 5000);
    assert_int_equal(mw_state_file_client(&sf, slot, 9999).messages, 3);
    slot = mw_state_file_find_client(&sf, 17, &known, &evicted);
    assert_false(known); /* forgotten */
    slot = mw_state_file_find_client(&sf, 18, &known, &evicted);
    assert_true(known);
    assert_int_equal(mw_state_file_client(&sf, slot, 18).messages, 18);
    mw_state_file_close(&sf);
}

/* Without a usable file the accounting still works in memory, for this process's life. */
static void test_an_unusable_path_still_tracks_in_memory(void **state)
{
    (void)state;
    struct mw_state_file sf;
    uint64_t lost = 0;
    assert_int_not_equal(mw_state_file_open(&sf, "/nonexistent-dir/agent.state", &lost), 0);
    assert_int_equal(lost, 0);
    assert_false(sf.has_history);
    bool known;
    uint64_t evicted;
    int slot = mw_state_file_find_client(&sf, 5, &known, &evicted);
    assert_true(slot >= 0);
    mw_state_file_progress(&sf, slot, 5, 8, 8, 1);
    assert_int_equal(mw_state_file_client(&sf, slot, 5).messages, 8);
    mw_state_file_close(&sf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_progress_and_unsealed_survive_a_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_update_cut_short_is_finished_at_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_file_from_before_the_client_table_is_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_full_table_gives_up_the_least_recently_seen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_unusable_path_still_tracks_in_memory, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

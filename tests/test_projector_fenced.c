/*
 * test_projector_fenced.c: a projector whose static group membership is taken
 * over by a newer instance with the same group.instance.id is fenced for good
 * by the broker. It must exit non-zero (so its supervisor restarts it) rather
 * than stay up with no partitions, looking healthy; the newer one carries on.
 */
#include "projector_harness.h"

static ph_env_t env;

/* Waits until the log at path has a line containing what; fails after timeout_s. */
static void wait_log(const char *path, const char *what, int timeout_s)
{
    time_t deadline = time(NULL) + timeout_s;
    while (time(NULL) < deadline) {
        char *text = hub_read_file(path, NULL, NULL, 0);
        int found = text && strstr(text, what);
        free(text);
        if (found)
            return;
        usleep(100 * 1000);
    }
    TEST_FAIL_("no '%s' in %s after %d s", what, path, timeout_s);
}

static void test_fenced_instance_exits(void)
{
    ph_env_t newer;
    int status = 0;
    pid_t done = 0;

    ph_setup(&env, "fenced", 1, "batch_max_ms = 50;");
    ph_start(&env);
    wait_log(env.log, "event=partitions_assigned", 60);

    /* Same configuration, so the same group.instance.id, in a second process. */
    newer = env;
    newer.pid = 0;
    snprintf(newer.log, sizeof(newer.log), "%s/projector-newer.log", env.dir);
    ph_start(&newer);

    time_t deadline = time(NULL) + 60;
    while (time(NULL) < deadline && (done = waitpid(env.pid, &status, WNOHANG)) == 0)
        usleep(100 * 1000);
    ASSERT_INT_EQ(done, env.pid);
    env.pid = 0;
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_INT_EQ(WEXITSTATUS(status), HUB_EXIT_FAILURE);
    wait_log(env.log, "event=consumer_fatal error=FENCED_INSTANCE_ID", 1);

    ph_check_alive(&newer);
    ASSERT_INT_EQ(ph_stop(&newer, SIGTERM), 0);
    ph_teardown(&env);
}

int main(void)
{
    RUN_TEST(test_fenced_instance_exits);
    return 0;
}

/* A fast QoS 1 publisher for the ingest benchmark, on libmosquitto.
 *
 * usage: pub HOST PORT PREFIX DEVICES MESSAGES RATE READINGS BASE_MS [latency]
 *   DEVICES   device ids wm-000000 .. (messages go round-robin over them)
 *   RATE      messages per second, 0 = as fast as the broker takes them
 *   READINGS  reading sets per message (1 = one object, >1 = a store-and-forward array)
 *   BASE_MS   epoch ms of the first reading; each device's readings are 1 s apart
 *   latency   add "pub_ms": the wall-clock epoch ms at publish time (an unknown metric,
 *             which ingest keeps) so publish-to-commit latency can be measured
 * Prints one line: published, acknowledged, seconds, msg/s.
 */
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long acked = 0;

static void on_publish(struct mosquitto *m, void *obj, int mid) {
    (void)m; (void)obj; (void)mid;
    atomic_fetch_add(&acked, 1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: pub HOST PORT PREFIX DEVICES MESSAGES RATE READINGS BASE_MS [latency]\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    const char *prefix = argv[3];
    long devices = atol(argv[4]), messages = atol(argv[5]);
    double rate = atof(argv[6]);
    long readings = atol(argv[7]);
    long long base_ms = atoll(argv[8]);
    int latency = argc > 9 && strcmp(argv[9], "latency") == 0;

    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof id, "bench-pub-%d", (int)getpid());
    struct mosquitto *m = mosquitto_new(id, true, NULL);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(m, 2000);
    mosquitto_publish_callback_set(m, on_publish);
    if (mosquitto_connect(m, host, port, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "cannot connect to %s:%d\n", host, port);
        return 1;
    }
    mosquitto_loop_start(m);

    size_t cap = 64 + (size_t)readings * 96;
    char *payload = malloc(cap);
    char topic[256];
    double start = now_s();
    for (long i = 0; i < messages; i++) {
        if (rate > 0) {
            double due = start + i / rate;
            double wait = due - now_s();
            if (wait > 0) usleep((useconds_t)(wait * 1e6));
        }
        long device = i % devices, round = i / devices;
        snprintf(topic, sizeof topic, "%s/wm-%06ld/telemetry", prefix, device);
        size_t len = 0;
        if (readings > 1) payload[len++] = '[';
        for (long k = 0; k < readings; k++) {
            long long ts = base_ms + (round * readings + k) * 1000LL;
            if (latency)
                len += snprintf(payload + len, cap - len, "%s{\"ts\":%lld,\"pub_ms\":%.3f}",
                                k ? "," : "", ts, now_s() * 1000.0);
            else
                len += snprintf(payload + len, cap - len, "%s{\"ts\":%lld,\"total_m3\":%ld.%03ld}",
                                k ? "," : "", ts, round, k);
        }
        if (readings > 1) payload[len++] = ']';
        int rc;
        while ((rc = mosquitto_publish(m, NULL, topic, (int)len, payload, 1, false)) ==
               MOSQ_ERR_NOMEM)
            usleep(1000);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "publish failed: %s\n", mosquitto_strerror(rc));
            return 1;
        }
        /* Keep libmosquitto's own queue short, so memory stays flat. */
        while (i - atomic_load(&acked) > 20000) usleep(200);
    }
    while (atomic_load(&acked) < messages) usleep(1000);
    double took = now_s() - start;
    printf("published %ld acknowledged %ld seconds %.3f rate %.0f\n", messages,
           atomic_load(&acked), took, messages / took);
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}

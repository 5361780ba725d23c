/*
 * chorus-status: asks a running Chorus coordinator for its cluster status and prints it.
 *
 * It proves that the protocol in proto/ is language-neutral: the message code comes from protoc-c
 * (libprotobuf-c) and the transport is plain libzmq (a DEALER socket), with no Swift involved.
 *
 *   chorus-status ENDPOINT [TIMEOUT_MS]        e.g. chorus-status tcp://127.0.0.1:7100 3000
 *
 * Security as the chorus CLI's: with CHORUS_KEYS set, the socket is a CurveZMQ client with the key
 * CHORUS_KEYS/$CHORUS_KEY_NAME.key_secret, dialling the server key in CHORUS_KEYS/coordinator.key (zcert files,
 * docs/security.md); without it, plaintext (a coordinator started with --insecure).
 *
 * Exit codes: 0 ok, 2 usage or decode failure, 3 no reply in time, 4 the coordinator answered an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "chorus/v1/cluster.pb-c.h"

/* The value of `KEY = "..."` in a zcert file (40 Z85 characters), into out[41]. 0 on success. */
static int zcert_value(const char *path, const char *key, char out[41]) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        char *k = strstr(line, key);
        char *q = k ? strchr(k, '"') : NULL;
        if (q && strlen(q + 1) >= 41 && q[41] == '"') {
            memcpy(out, q + 1, 40);
            out[40] = 0;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* CURVE client keys from CHORUS_KEYS; 0 when set up or not asked for, -1 (with a message) when they cannot be read. */
static int setup_curve(void *sock) {
    const char *dir = getenv("CHORUS_KEYS");
    if (!dir || !*dir) return 0;
    const char *name = getenv("CHORUS_KEY_NAME");
    if (!name || !*name) name = "admin";
    char path[4096], server[41], public_key[41], secret_key[41];
    snprintf(path, sizeof path, "%s/coordinator.key", dir);
    if (zcert_value(path, "public-key", server) != 0) {
        fprintf(stderr, "error: no public-key in %s\n", path);
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s.key_secret", dir, name);
    if (zcert_value(path, "public-key", public_key) != 0 || zcert_value(path, "secret-key", secret_key) != 0) {
        fprintf(stderr, "error: no public-key and secret-key in %s\n", path);
        return -1;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, public_key, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret_key, 40) != 0) {
        fprintf(stderr, "error: CURVE keys rejected: %s\n", zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static const char *state_name(Chorus__V1__NodeState s) {
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&chorus__v1__node_state__descriptor, s);
    return v ? v->name : "UNKNOWN";
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: chorus-status ENDPOINT [TIMEOUT_MS]\n");
        return 2;
    }
    const char *endpoint = argv[1];
    long timeout_ms = argc == 3 ? strtol(argv[2], NULL, 10) : 3000;
    if (timeout_ms <= 0) {
        fprintf(stderr, "error: TIMEOUT_MS must be a positive number\n");
        return 2;
    }

    Chorus__V1__ClusterStatusRequest status_req = CHORUS__V1__CLUSTER_STATUS_REQUEST__INIT;
    Chorus__V1__Request req = CHORUS__V1__REQUEST__INIT;
    req.protocol_version = 1;
    req.correlation_id = 42;
    req.sender = "c-client";
    req.body_case = CHORUS__V1__REQUEST__BODY_CLUSTER_STATUS;
    req.cluster_status = &status_req;
    size_t len = chorus__v1__request__get_packed_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    chorus__v1__request__pack(&req, buf);

    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (setup_curve(sock) != 0) return 2;
    if (zmq_connect(sock, endpoint) != 0) {
        fprintf(stderr, "error: cannot connect to %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 2;
    }
    if (zmq_send(sock, buf, len, 0) < 0) {
        fprintf(stderr, "error: send failed: %s\n", zmq_strerror(zmq_errno()));
        return 3;
    }
    free(buf);

    zmq_pollitem_t items[] = {{sock, 0, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, 1, timeout_ms) <= 0 || !(items[0].revents & ZMQ_POLLIN)) {
        fprintf(stderr, "error: no reply from %s within %ld ms\n", endpoint, timeout_ms);
        zmq_close(sock);
        zmq_ctx_term(ctx);
        return 3;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, 0) < 0) {
        fprintf(stderr, "error: receive failed: %s\n", zmq_strerror(zmq_errno()));
        return 3;
    }
    Chorus__V1__Response *resp =
        chorus__v1__response__unpack(NULL, zmq_msg_size(&msg), (const uint8_t *)zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    if (resp == NULL) {
        fprintf(stderr, "error: the reply is not a chorus.v1.Response\n");
        return 2;
    }
    if (resp->correlation_id != 42) {
        fprintf(stderr, "error: reply correlation id %llu, expected 42\n", (unsigned long long)resp->correlation_id);
        return 2;
    }
    if (resp->body_case == CHORUS__V1__RESPONSE__BODY_ERROR) {
        fprintf(stderr, "error: coordinator answered: %s\n", resp->error->message);
        chorus__v1__response__free_unpacked(resp, NULL);
        return 4;
    }
    if (resp->body_case != CHORUS__V1__RESPONSE__BODY_CLUSTER_STATUS) {
        fprintf(stderr, "error: unexpected reply body %d\n", (int)resp->body_case);
        chorus__v1__response__free_unpacked(resp, NULL);
        return 2;
    }
    Chorus__V1__ClusterStatus *s = resp->cluster_status;
    printf("coordinator_id=%s\n", s->coordinator_id);
    printf("map_version=%llu\n", (unsigned long long)s->map_version);
    printf("partition_count=%u\n", s->partition_count);
    printf("unassigned_partitions=%u\n", s->unassigned_partitions);
    printf("nodes=%zu\n", s->n_nodes);
    for (size_t i = 0; i < s->n_nodes; i++) {
        Chorus__V1__NodeInfo *n = s->nodes[i];
        printf("node id=%s name=%s state=%s partitions=%u\n", n->id, n->name, state_name(n->state), n->partitions);
    }
    chorus__v1__response__free_unpacked(resp, NULL);
    return 0;
}

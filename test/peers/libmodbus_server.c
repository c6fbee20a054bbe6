/* A Modbus TCP server on libmodbus (Debian's libmodbus-dev), for edgeferry's interop tests.
 * The test compiles it with gcc. It listens on 127.0.0.1 on an ephemeral port, prints
 * "listening PORT", and serves one client at a time until it is killed.
 *
 * The register image comes on stdin, one entry a line:
 *   h ADDR WORD        holding register (i: input register), WORD in hex
 *   c ADDR 0|1         coil (d: discrete input)
 * (libmodbus 3.1.6's modbus_set_float_abcd/badc/cdab/dcba are not used: on a little-endian host
 * they write the orders their names say in pairs swapped — abcd gives BADC, cdab gives DCBA.)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    modbus_mapping_t *map = modbus_mapping_new(1000, 1000, 1000, 1000);
    char kind[8];
    unsigned addr;
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "%7s", kind) != 1) continue;
        unsigned value;
        if (sscanf(line, "%*s %u %x", &addr, &value) != 2 || addr > 999) return 2;
        switch (kind[0]) {
        case 'h': map->tab_registers[addr] = value; break;
        case 'i': map->tab_input_registers[addr] = value; break;
        case 'c': map->tab_bits[addr] = value ? 1 : 0; break;
        case 'd': map->tab_input_bits[addr] = value ? 1 : 0; break;
        default: return 2;
        }
    }
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", 0);
    int server = modbus_tcp_listen(ctx, 1);
    if (server < 0) {
        fprintf(stderr, "listen: %s\n", modbus_strerror(errno));
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(server, (struct sockaddr *)&sa, &len);
    printf("listening %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    for (;;) {
        if (modbus_tcp_accept(ctx, &server) < 0) continue;
        for (;;) {
            int rc = modbus_receive(ctx, query);
            if (rc > 0) modbus_reply(ctx, query, rc, map);
            else if (rc < 0) break;
        }
        modbus_close(ctx);
    }
}

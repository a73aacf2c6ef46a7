"""Device checks, one module per type (http, tcp, ping, dns, tls, modbus, snmp, mqtt, opcua).

See core/checks/base.py for the shape every type shares and core/checks/registry.py for how types are
found: adding a protocol is one new module here and nothing else.
"""

rm -rf /tmp/prof/w && mkdir -p /tmp/prof/w && cp /tmp/prof/mail.xlsx /tmp/prof/w/
cd /tmp/prof/w
LEERGANG_SMTP_HOST=127.0.0.1 LEERGANG_SMTP_PORT=8025 LEERGANG_SMTP_SECURITY=none "$@"

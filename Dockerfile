# Mediastore: one image for the web server (gunicorn, WSGI), the Celery worker and beat.
# docker-compose.yml runs it in the production shape; see README "Docker Compose".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MEDIASTORE_VAR_DIR=/app/var \
    WEB_CONCURRENCY=2 \
    MEDIASTORE_THREADS=32

# An unprivileged user; it owns only /app/var (static files, beat schedule), not the code.
RUN groupadd --system --gid 10001 mediastore \
 && useradd --system --uid 10001 --gid mediastore --home-dir /app --no-create-home \
            --shell /usr/sbin/nologin mediastore

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
RUN mkdir -p /app/var/prometheus && chown -R mediastore:mediastore /app/var

USER mediastore

# STATIC_ROOT is $MEDIASTORE_VAR_DIR/static. The throwaway SECRET_KEY keeps settings from
# generating var/secret_key into the image: every deployment must set its own SECRET_KEY.
RUN SECRET_KEY=collectstatic-build-only python manage.py collectstatic --noinput

EXPOSE 8000

# gunicorn with threaded workers (WSGI): downloads stream chunk by chunk. config/gunicorn.conf.py
# sets the worker class and reads WEB_CONCURRENCY (workers) and MEDIASTORE_THREADS (threads per
# worker); extra flags can be given in GUNICORN_CMD_ARGS.
# The worker and beat run this image with their own command (see docker-compose.yml).
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "--bind", "0.0.0.0:8000"]

# A stand-in for the official redis:7 image where no registry can be reached:
# Debian's redis-server (7.x), run the way the official image runs it (as the
# redis user, data in the /data volume, `redis-server` as the command, with
# redis-cli for health checks). tests/testbed/images.py builds it as redis:7.
FROM debian:bookworm-slim
ARG APT_OPTIONS=""
RUN apt-get $APT_OPTIONS update \
 && DEBIAN_FRONTEND=noninteractive apt-get $APT_OPTIONS install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir /data && chown redis:redis /data
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]

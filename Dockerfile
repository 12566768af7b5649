# cairn in a container: a static binary (no cgo) on distroless/static,
# running as an unprivileged user, its store in the volume
# /var/lib/cairn (private to that user), as the systemd unit lays it out.
#
#   docker build -t cairn .
#   docker run -d --name cairn -p 127.0.0.1:8080:8080 -v cairn:/var/lib/cairn cairn
#   docker exec cairn /cairn user add alice --data /var/lib/cairn/data --key-file /var/lib/cairn/secret.key
#
# Port 8080 serves the APIs; 9180 serves /metrics, /livez and /readyz:
# publish it only where Prometheus reaches it, never to the internet (its
# counters show what was deduplicated).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/cairn ./cmd/cairn
RUN mkdir -m 0700 /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cairn /cairn
COPY --from=build --chown=65532:65532 /out/state /var/lib/cairn
USER 65532:65532
WORKDIR /var/lib/cairn
VOLUME /var/lib/cairn
EXPOSE 8080 9180
ENTRYPOINT ["/cairn"]
CMD ["serve", "--data", "/var/lib/cairn/data", "--key-file", "/var/lib/cairn/secret.key", "--listen", "0.0.0.0:8080", "--metrics-listen", "0.0.0.0:9180"]

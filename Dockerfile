# portald and portalctl in one small image, for docker compose.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/portald ./cmd/portald && \
    CGO_ENABLED=0 go build -trimpath -o /out/portalctl ./cmd/portalctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/portald"]

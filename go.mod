module github.com/tcpstated/tcpstated

go 1.26

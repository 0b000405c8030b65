<?php
// The seed app's client code path for json-port tests: stream_socket_client, then one
// fwrite per item, no framing, no reply read, fclose.
//   php json_port_client.php <port> <items.json>
// items.json: a JSON array; {"task": {...}} is written as json_encode(task) (exactly what
// the seed writes), {"raw": "..."} as those bytes.
[$_, $port, $file] = $argv;
$items = json_decode(file_get_contents($file), true);
$sock = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5.0);
if ($sock === false) {
    fwrite(STDERR, "connect: $errstr\n");
    exit(2);
}
foreach ($items as $item) {
    $bytes = array_key_exists('task', $item) ? json_encode($item['task']) : $item['raw'];
    for ($done = 0; $done < strlen($bytes); $done += $n) {
        $n = @fwrite($sock, substr($bytes, $done));
        if ($n === false || $n === 0) {
            echo "closed\n";
            exit(0);
        }
    }
}
fclose($sock);
echo "written\n";

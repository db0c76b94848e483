// possync console: one command to, or an interactive session with, a running daemon's console.
//
//   possync console (--serial DEV [--baud N] | --socket PATH.sock) [--timeout MS] [COMMAND...]
//
// With COMMAND: sends it, prints the answer to stdout and exits 0 when it succeeded, 1 when
// the console answered with an error, 2 when there was no usable console (bad arguments,
// cannot open/connect, no prompt, connection closed, MS milliseconds without a byte;
// default 5000) with a one-line reason on stderr. Without COMMAND: each stdin line is sent
// and its answer printed (a prompt is shown when stdin is a terminal) until end of input;
// exit 0, or 2 when the console went away.
//
// Over the socket it speaks the script protocol of firmware/console/session.h. Over a
// serial line it types like a person: Ctrl-C (clears any half line, the prompt answers),
// then the command and CR, reads until the prompt comes back, and drops the echo.
#pragma once

// argv holds the words that follow `possync console` (argv[0] is the first of them).
int runConsoleClient(int argc, char** argv);

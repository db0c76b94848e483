// The `possync console` client as a stand-alone program, so the console tests can run it as a
// child process against a console on their own loop (the full possync tool is the lead's).
int runConsoleClient(int argc, char** argv);

int main(int argc, char** argv) {
    return runConsoleClient(argc - 1, argv + 1);
}
